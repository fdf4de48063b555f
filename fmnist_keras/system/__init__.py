"""The machine and the filesystem: CPU facts and TensorFlow's oneDNN switch, library versions,
atomic publishing of output folders, Ctrl-C handling and native log silencing.

Nothing here imports TensorFlow at module level or any other stage of fmnist_keras: every stage
may import this package.
"""
