"""The head-office web app (``loyalty-hub web``): customer pages under ``/`` (balance query,
enrollment request) and the back office under ``/admin``. Server-rendered, Spanish first, no
CDN: templates and the style sheet ship in this package."""
