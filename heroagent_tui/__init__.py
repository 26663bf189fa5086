"""HeroAgent's terminal app and command line."""
