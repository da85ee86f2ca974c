"""The drug reference: the French public drug database (BDPM) read, reduced, stored in the snapshot, and used
to resolve what a treatment line names (brand, DCI text or code) to substances, forms, routes and the
prescribing conditions the ordonnance rules need.

- `text`: normalisation of drug names, strengths, forms, routes (no I/O).
- `bdpm`: reading the BDPM files (encodings, column counts, bad lines) into `Product`s.
- `reference`: the snapshot tables, the SQL-backed `DrugReference` and the resolver.
"""
