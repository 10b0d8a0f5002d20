"""CRM domain: the business data of the ISP customer lifecycle and the rules that keep it consistent.

Services take a SQLAlchemy ``Connection`` and run inside the caller's transaction, so a process step or a
REST call commits or rolls back everything together. Bad input raises :class:`crm.errors.DomainError`, which
names the field. This package imports nothing else of ours (see DESIGN.md: imports point downward only).

Tables: ``schema``. Rules shared by several aggregates: ``pricing`` (document totals), ``numbering`` (gap-free
numbers), ``salutation``, ``sla``, ``status`` (state machines), ``validation``. One module per aggregate:
``accounts`` (with contacts and addresses), ``products``, ``quotes``, ``orders``, ``booked_services``,
``invoices``, ``service_desk`` (incidents, problems), ``opportunities``, ``campaigns``, ``activities``,
``appointments``, ``contracts``, ``staff``, ``documents``; read models in ``queries``; ``demo`` data.
"""
