# The offline quick start: a small wavelet GPT on the built-in pydocs characters (its time and load: results/quickstart).
out_dir = 'out/quickstart'
dataset = 'pydocs'
wavelet = 'haar'
n_layer = 4
n_head = 4
n_embd = 128
block_size = 128
batch_size = 16
max_iters = 600
eval_interval = 200
eval_iters = 10
warmup_iters = 50
learning_rate = 2e-3
min_lr = 2e-4
sample_tokens = 200
device = 'cpu'
