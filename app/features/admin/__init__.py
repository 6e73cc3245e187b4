"""The Admin screen: accounts, invitations, quotas, resets, the server panel and the
log of every admin action. Admins only; an admin still cannot read other accounts'
files."""
