# M2 of the Equal-Info study: one model size and one token budget for every tokenization of the same
# text (bytes, SentencePiece, EqualInfoAC[b=16] with v=65k and v=256), as in the paper's comparison.
# 4 layers x 128, context 64 tokens, 8 x 64 tokens per step, 800 steps: 409,600 training tokens.
# Give the dataset and out_dir: --dataset=books_ei16 --out_dir=out/m2_books_ei16 (results/equal_info/README.md)
wavelet = 'none'
n_layer = 4
n_head = 4
n_embd = 128
block_size = 64
batch_size = 8
max_iters = 800
eval_interval = 400
eval_iters = 10
warmup_iters = 50
learning_rate = 2e-3
min_lr = 2e-4
device = 'cpu'
