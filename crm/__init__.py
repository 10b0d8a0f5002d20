"""CRM domain: the business data of the ISP customer lifecycle and the rules that keep it consistent.

Services take a SQLAlchemy ``Connection`` and run inside the caller's transaction, so a process step or a
REST call commits or rolls back everything together. Bad input raises :class:`crm.errors.DomainError`.
This package imports nothing else of ours (see DESIGN.md: imports point downward only).
"""
