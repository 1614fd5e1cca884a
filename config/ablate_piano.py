# Ablations on raw audio, with the settings of config/compare_piano.py (same model, data, steps, seeds):
# a quarter of the coordinates averaged instead of half; one window (32) for every averaged
# coordinate instead of the dyadic ladder (is multi-scale needed?); 'valid' padding (divide by the
# tokens actually seen at the start); exponential moving averages with the same spans.
# Build the data first: python prepare/youtubemix.py --input ../shared/data/audio --out data/piano
results = 'results/piano_ablation'
variants = 'none,haar,haar+wavelet_frac=0.25,haar+wavelet_window=32,haar+wavelet_pad=valid,ema'
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
