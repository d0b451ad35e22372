"""The acquisition daemon: the single owner of every instrument in its config."""
