# The paper's YouTubeMix model (10 layers, width 128, 8 heads, context 512), wavelet='none', with the
# Fourier head over the 256 mu-law levels (64 frequencies, the regulariser weight of the Fourier head
# paper; results/fourier: smoother PMFs, but a higher loss than the linear head in our runs).
# Build the data first: python prepare/youtubemix.py
out_dir = 'out/youtubemix_fourier'
dataset = 'youtubemix'
wavelet = 'none'
head = 'fourier'
fourier_freqs = 64
fourier_reg = 1e-6
n_layer = 10
n_head = 8
n_embd = 128
block_size = 512
dropout = 0.0
batch_size = 32
learning_rate = 6e-4
