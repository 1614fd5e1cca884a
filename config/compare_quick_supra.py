# SUPRA on a laptop, on the built-in pydocs text: (a) a softmax model with rotary positions, S = 300
# steps; (b) that model converted to linear attention (every trained weight kept, phi new) and
# uptrained for 45 steps (15% of S); (c) the linear model from scratch for the same 345 steps in all.
# The table's final losses compare (b) with (a) and (c); the converted runs' iter 0 in their logs
# is the softmax model right after conversion, before any uptraining.
# python compare.py config/compare_quick_supra.py       # about 1.5 minutes on 2 busy CPU cores (docs/supra.md)
results = 'out/quick_supra'  # a run of it is kept in results/quick_supra (run.txt: its time and load)
variants = ('softmax:position=rope,'
            'converted:attention=linear+init_from=softmax+max_iters=45+warmup_iters=5+learning_rate=1e-3+min_lr=1e-4,'
            'scratch:attention=linear+position=rope+max_iters=345')
seeds = '1,2'
dataset = 'pydocs'
n_layer = 4
n_head = 4
n_embd = 64
block_size = 64
batch_size = 16
max_iters = 300
eval_interval = 25
eval_iters = 8
warmup_iters = 30
learning_rate = 3e-3
min_lr = 3e-4
device = 'cpu'
threads = 1
