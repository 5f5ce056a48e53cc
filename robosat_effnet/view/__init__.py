"""`rs-effnet view`: imagery, masks and outlines on an offline map page (Leaflet ships inside the package)."""

from robosat_effnet.view.page import Page, write_page
from robosat_effnet.view.server import PageServer, serve_in_thread

__all__ = ["Page", "PageServer", "serve_in_thread", "write_page"]
