# SUPRA on text (the 10 Gutenberg books of config/compare_books.py), at the same settings:
# (a) a softmax model with rotary positions, S = 400 steps; (b) that model converted to linear
# attention and uptrained for 60 steps (15% of S); (c) the linear model from scratch for the same 460
# steps in all; then (a)-(c) again with the wavelet (haar). 3 seeds.
# python compare.py config/compare_supra_books.py
results = 'results/supra_books'
variants = ('softmax:position=rope,'
            'converted:attention=linear+init_from=softmax+max_iters=60+warmup_iters=6+learning_rate=1e-3+min_lr=1e-4,'
            'scratch:attention=linear+position=rope+max_iters=460,'
            'softmax_haar:position=rope+wavelet=haar,'
            'converted_haar:attention=linear+init_from=softmax_haar+max_iters=60+warmup_iters=6+learning_rate=1e-3+min_lr=1e-4,'
            'scratch_haar:attention=linear+position=rope+wavelet=haar+max_iters=460')
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
