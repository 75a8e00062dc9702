from shrinkcli.cli import entry

entry()
