# The published CPU comparison on symbolic music: 150 classical solo-piano MIDI files of a private
# collection (their names: results/midi/files.txt), built with: python prepare/maestro.py --input midi/ --out data/midi150
# Without those files, MAESTRO is the public equivalent: python prepare/maestro.py --out data/midi150
# A stated smaller model than the paper's (4 layers, not 10; context 128, not 512) so that
# 3 variants x 3 seeds take about 30 minutes per dataset on 2 CPU cores.
results = 'results/midi'
variants = 'none,haar,learnable'
seeds = '1,2,3'
dataset = 'midi150'
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
