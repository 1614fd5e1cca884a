# Equal-Info Windows on a laptop, step 2 of docs/equal_info.md's "On a laptop": M1, the byte-level GPT
# that drives the coder, as config/equal_info_m1.py but for 1,000 steps (its time: docs/equal_info.md) on the bytes of
# the first 300,000 characters of pydocs (data/pydocs300k_m1: BOS + 16 bytes, chunks shuffled).
wavelet = 'none'
dataset = 'pydocs300k_m1'
out_dir = 'out/m1_pydocs300k'
n_layer = 3
n_head = 4
n_embd = 128
block_size = 32
batch_size = 32
max_iters = 1000
eval_interval = 250
eval_iters = 10
warmup_iters = 100
learning_rate = 3e-3
min_lr = 3e-4
device = 'cpu'
threads = 1
