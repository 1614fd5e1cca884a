# The published CPU comparison on text: 10 Project Gutenberg books (ebook numbers 62, 64, 68, 72,
# 74, 76, 164, 500, 2591, 18857 as plain UTF-8 text, the Gutenberg header and licence removed), in
# one folder, built with: python prepare/text8.py --input books/ --out data/books
# A stated smaller model than the paper's (4 layers, not 10; context 128, not 512) so that
# 3 variants x 3 seeds take about 30 minutes per dataset on 2 CPU cores.
results = 'results/books'
variants = 'none,haar,learnable'
seeds = '1,2,3'
dataset = 'books'
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
