# The paper's YouTubeMix model (10 layers, width 128, 8 heads, context 512), wavelet='learnable'.
# Optimiser settings are ours (the paper gives none). Build the data first: python prepare/youtubemix.py
out_dir = 'out/youtubemix_wavelet_learnable'
dataset = 'youtubemix'
wavelet = 'learnable'
n_layer = 10
n_head = 8
n_embd = 128
block_size = 512
dropout = 0.0
batch_size = 32
learning_rate = 6e-4
