"""Panel user interface: pages and widgets. Views find search backends and product
builders only through the app's registries."""
