"""Session-wide test settings."""
import os
import random

import torch

# Every test run gets its own DDS domain so parallel runs on one machine do not see each other.
os.environ.setdefault('ROS_DOMAIN_ID', str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
torch.set_num_threads(min(2, os.cpu_count() or 1))
