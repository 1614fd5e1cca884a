# M1 of Equal-Info Windows: the byte-level GPT that drives the coder (prepare/equal_info.py). The paper's
# M1 is 3 layers x 256 (MLP 1024); ours is 3 x 128 so that the coder runs a few MB in minutes on one CPU
# core. Its data: BOS + 16 bytes, chunks shuffled (python prepare/bytes.py --input ... --chunk 16), so it
# learns to predict a window from the BOS alone; the context covers a whole window (cap <= 32).
# Give the dataset and out_dir: --dataset=books_m1 --out_dir=out/m1_books
wavelet = 'none'
n_layer = 3
n_head = 4
n_embd = 128
block_size = 32
batch_size = 32
max_iters = 4000
eval_interval = 1000
eval_iters = 10
warmup_iters = 100
learning_rate = 3e-3
min_lr = 3e-4
device = 'cpu'
