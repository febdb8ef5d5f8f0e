"""REST API of what builders define and what runs, one module per resource (registered in
console/api_urls.py)."""
