# The Fourier head on a laptop: linear head vs Fourier heads (16 and 64 frequencies) on tones, the
# SYNTHETIC piano built offline on first use (prepare/tones.py, not recorded music). Look at the
# "PMF smoothness" column (lower: smoother predicted distributions over the 256 mu-law levels).
# python compare.py config/compare_quick_fourier.py     # its time and load: results/quick_fourier/run.txt (a run kept)
results = 'out/quick_fourier'
variants = 'none,head=fourier+fourier_freqs=16,head=fourier+fourier_freqs=64'
seeds = '1,2'
dataset = 'tones'
n_layer = 4
n_head = 4
n_embd = 64
block_size = 128
batch_size = 16
max_iters = 300
eval_interval = 50
eval_iters = 8
warmup_iters = 30
learning_rate = 3e-3
min_lr = 3e-4
device = 'cpu'
threads = 1
