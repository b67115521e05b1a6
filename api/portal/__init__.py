"""The debtor's own page (`/p/{token}`): see, pay, dispute, promise, propose a plan."""
