from fmnist_keras.cli import main

main()
