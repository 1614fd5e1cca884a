# A small side-by-side comparison on the built-in pydocs data (its time and load: results/quick/run.txt, a
# run of it kept in the repository).
# python compare.py config/compare_quick.py
results = 'out/quick'
variants = 'none,haar,learnable'
seeds = '1,2'
dataset = 'pydocs'
n_layer = 4
n_head = 4
n_embd = 64
block_size = 64
batch_size = 16
max_iters = 150
eval_interval = 25
eval_iters = 8
warmup_iters = 20
learning_rate = 3e-3
min_lr = 3e-4
device = 'cpu'
