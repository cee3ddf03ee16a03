"""Dataset registry and DataLoader construction (data.md, sections 1-2; training.md, section 8)."""
import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, Subset

from data_provider.data_loader import MultivariateDatasetBenchmark, UnivariateDatasetBenchmark, UtsdDataset

DATA_DICT = {
    'MultivariateDatasetBenchmark': MultivariateDatasetBenchmark,
    'UnivariateDatasetBenchmark': UnivariateDatasetBenchmark,
    'Utsd': UtsdDataset,
    'Utsd_Npy': UtsdDataset,
}


def reads_a_folder(data_key):
    """True for the keys that read every file under --root_path (and ignore --data_path)."""
    return DATA_DICT.get(data_key) is UtsdDataset


def get_dataset(args, flag, test_sizes=False):
    """Build split `flag` (train/val/test) of dataset `args.data`; test (or any split with test_sizes) uses the
    test's L and horizon."""
    if args.data not in DATA_DICT:
        raise ValueError(f"--data {args.data!r} is not a dataset key; valid keys: {', '.join(DATA_DICT)}")
    if flag == 'test' or test_sizes:
        size = [args.test_seq_len, args.input_token_len, args.test_pred_len]
    else:
        size = [args.seq_len, args.input_token_len, args.output_token_len]
    return DATA_DICT[args.data](args.root_path, args.data_path, flag, size=size,
                                nonautoregressive=args.nonautoregressive,
                                subset_rand_ratio=args.subset_rand_ratio, seed=args.seed)


def get_loader(args, dataset, flag, rank=0, world_size=1):
    """Train is shuffled (seeded); val/test are in order. Under DDP (world_size > 1) train uses a
    DistributedSampler and val/test a non-padding shard, except flag 'test_full' (the final test on rank 0)."""
    train, distributed = flag == 'train', world_size > 1
    sampler = generator = None
    if train and distributed:
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True,
                                     seed=args.seed, drop_last=False)
    elif train:
        generator = torch.Generator().manual_seed(args.seed)
    elif distributed and flag != 'test_full':
        dataset = Subset(dataset, range(rank, len(dataset), world_size))
    return DataLoader(dataset, batch_size=args.batch_size, shuffle=train and not distributed, sampler=sampler,
                      generator=generator, drop_last=False, num_workers=args.num_workers,
                      persistent_workers=args.num_workers > 0, pin_memory=torch.cuda.is_available())


def spread_loader(args, flag, n_windows):
    """A loader over n_windows windows of split `flag` at the test's length and horizon, at evenly spaced
    indices from its first window to its last."""
    dataset = get_dataset(args, flag, test_sizes=True)
    picked = np.unique(np.linspace(0, len(dataset) - 1, min(n_windows, len(dataset))).round().astype(int))
    return get_loader(args, Subset(dataset, picked.tolist()), flag)


def data_provider(args, flag):
    """(dataset, loader) for a single process."""
    dataset = get_dataset(args, flag)
    return dataset, get_loader(args, dataset, flag)
