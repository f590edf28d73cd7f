"""Views: what each pane of the main screen shows, computed from plain data. No Textual here.

Each view is a function from the Fleet (and the screen's choices: the filter, the Hosts row
chosen, the sort, the columns, the marks) to an immutable value with the pane's rows (keyed
tuples of Cells, `virttui.widgets.cells`) and its title. A pane (`virttui.widgets.panes`) takes a
view and diffs it in; the screen (`virttui.screens.main`) keeps the layout, the keys, the cursor and
the marks. Caches that make a refresh cheap (the Domains rows per host, the Leases rows) live in a
small object the screen owns and hands to the view each time.
"""

from virttui.views.disks import DisksView, disks_view
from virttui.views.domains import DomainsCache, DomainsView, domain_scope, domains_view
from virttui.views.hosts import HostsView, hosts_view
from virttui.views.leases import LeasesCache, LeasesView, leases_view

__all__ = [
    "DisksView", "DomainsCache", "DomainsView", "HostsView", "LeasesCache", "LeasesView",
    "disks_view", "domain_scope", "domains_view", "hosts_view", "leases_view",
]
