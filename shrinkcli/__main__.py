from shrinkcli.cli import main

main()
