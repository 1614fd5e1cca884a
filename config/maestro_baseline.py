# The paper's MAESTRO model (10 layers, width 128, 8 heads, context 512), wavelet='none'.
# Optimiser settings are ours (the paper gives none). Build the data first: python prepare/maestro.py
out_dir = 'out/maestro_baseline'
dataset = 'maestro'
wavelet = 'none'
n_layer = 10
n_head = 8
n_embd = 128
block_size = 512
dropout = 0.0
batch_size = 32
learning_rate = 6e-4
