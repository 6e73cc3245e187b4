"""Who a request is, and what it may touch: the one place every route asks."""
