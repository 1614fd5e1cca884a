# The published CPU comparison on raw audio: 2 piano recordings from freesound.org, 442789
# ("Pistachio Ice Cream Ragtime", Lena Orsa) and 147793 ("sweet waltz", Setuniman), both CC BY-NC 3.0,
# as 44.1 kHz stereo WAV in one folder, built with: python prepare/youtubemix.py --input piano/ --out data/piano
# A stated smaller model than the paper's (4 layers, not 10; context 128, not 512) so that
# 3 variants x 3 seeds take about 30 minutes per dataset on 2 CPU cores.
results = 'results/piano'
variants = 'none,haar,learnable'
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
