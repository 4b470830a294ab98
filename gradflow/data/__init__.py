"""Data for training (``gradflow.data``): batch iteration over arrays and dataset loaders."""
from .batches import BatchIterator
from .datasets import (Dataset, DatasetError, Standardizer, check_arrays, load_csv, load_dataset, load_digits,
                       load_mnist, load_npz, train_test_split)
from .idx import IDXFormatError, read_idx, write_idx

__all__ = ["BatchIterator", "Dataset", "DatasetError", "Standardizer", "check_arrays", "load_csv",
           "load_dataset", "load_digits", "load_mnist", "load_npz", "train_test_split", "IDXFormatError",
           "read_idx", "write_idx"]
