"""The WebDAV file service and the HeroScript inbox that turns dropped files into jobs."""
