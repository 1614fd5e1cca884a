# The paper's text8 model (10 layers, width 128, 8 heads, context 512), wavelet='haar'.
# Optimiser settings are ours (the paper gives none). Build the data first: python prepare/text8.py
out_dir = 'out/text8_wavelet'
dataset = 'text8'
wavelet = 'haar'
n_layer = 10
n_head = 8
n_embd = 128
block_size = 512
dropout = 0.0
batch_size = 32
learning_rate = 1e-3
max_iters = 20000
warmup_iters = 500
eval_interval = 500
eval_iters = 40
