"""What this machine has and how to use it: CPU facts and peaks, thread sharing, the allocator,
device and precision choice, peak memory, and the timings kept between runs."""
