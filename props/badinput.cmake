# (being written) tests of issue 8: badinput
