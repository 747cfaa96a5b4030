"""The web dashboard: static files (HTML, CSS, plain JavaScript) that the admin listener serves
at /dashboard/ (see wharf/control/admin/static.py). Everything they show comes from the admin
API; nothing is fetched from anywhere else."""
