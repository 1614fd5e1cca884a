# The Fourier head on raw audio: linear head vs Fourier head with 16, 64 and 128 frequencies, without
# and with the wavelet, at the settings of config/compare_piano.py (its data: 2 freesound piano
# recordings, see results/README.md; built with python prepare/youtubemix.py --input piano/ --out data/piano).
# python compare.py config/compare_fourier.py     # 8 variants x 3 seeds, about 1.5 hours on 2 CPU cores
results = 'results/fourier'
variants = ('none,head=fourier+fourier_freqs=16,head=fourier+fourier_freqs=64,head=fourier+fourier_freqs=128,'
            'haar,haar+head=fourier+fourier_freqs=16,haar+head=fourier+fourier_freqs=64,haar+head=fourier+fourier_freqs=128')
seeds = '1,2,3'
dataset = 'piano'
n_layer = 4
n_head = 8
n_embd = 128
block_size = 128
batch_size = 16
max_iters = 400
eval_interval = 50
eval_iters = 10
warmup_iters = 50
learning_rate = 2e-3
min_lr = 2e-4
device = 'cpu'
