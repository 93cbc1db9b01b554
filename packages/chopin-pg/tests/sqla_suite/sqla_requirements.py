"""What postgresql+chopin:// supports, for SQLAlchemy's dialect suite (``[sqla_testing] requirement_cls``).

``SuiteRequirements`` closes every feature a backend may lack; this class opens the ones
PostgreSQL (15+) has, following SQLAlchemy's own requirements for its PostgreSQL dialects.
The ones left closed, and why:

* ``two_phase_transactions``: the test server runs with ``max_prepared_transactions = 0``.
* ``computed_columns_virtual`` before PostgreSQL 18, ``computed_columns_default_persisted`` from
  18 on (VIRTUAL became the default there): these two follow the server's version.
* ``fetch_percent``, ``percent_schema_names``, ``json_deserializer_binary``,
  ``legacy_unconditional_json_extract``, ``datetime_literals``, ``nvarchar_types``: PostgreSQL or
  our driver has no such thing (``FETCH ... PERCENT``, a binary JSON deserializer hook...).
* ``materialized_views_reflect_pk``, ``non_updating_cascade``,
  ``unique_index_reflect_as_unique_constraints``, ``foreign_keys_reflect_as_index``,
  ``repeated_*_foreign_keys``: not how PostgreSQL reflects (a UNIQUE constraint does reflect as
  an index too, with ``duplicates_constraint``: ``unique_constraints_reflect_as_index`` is open).
* ``mod_operator_as_percent_sign``, ``emulated_lastrowid*``, ``dbapi_lastrowid``: not our paramstyle
  or DB-API (``cursor.lastrowid`` is the OID, None for tables without OIDs; use RETURNING).
* ``async_dialect``: the dialect is the blocking one.
* ``reflect_indexes_with_ascdesc_as_expression``: PostgreSQL reflects ``q DESC`` as column
  ``q`` with ``column_sorting`` (Oracle's way is the expression).
"""

from __future__ import annotations

from sqlalchemy.testing import exclusions
from sqlalchemy.testing.requirements import SuiteRequirements


class Requirements(SuiteRequirements):
    """SQLAlchemy's suite requirements, opened where PostgreSQL and chopin_pg.dbapi support them."""

    @property
    def create_table_as(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def create_temp_table_as(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def table_ddl_if_exists(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def index_ddl_if_exists(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def uuid_data_type(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def table_value_constructor(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def deferrable_fks(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def boolean_col_expressions(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def nullsordering(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def intersect(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def except_(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def window_functions(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def window_range(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def window_range_numeric(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def window_range_non_numeric(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def ctes(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def ctes_with_update_delete(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def ctes_with_values(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def ctes_on_dml(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def tuple_in(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def views(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def cross_schema_fk_reflection(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def foreign_key_constraint_name_reflection(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def implicit_default_schema(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def default_schema_name_switch(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def reflects_pk_names(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def reflect_tables_no_columns(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def temp_table_comment_reflection(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def comment_reflection(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def comment_reflection_full_unicode(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def constraint_comment_reflection(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def column_collation_reflection(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def schema_create_delete(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def foreign_key_constraint_option_reflection_ondelete(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def fk_constraint_option_reflection_ondelete_restrict(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def fk_constraint_option_reflection_ondelete_noaction(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def foreign_key_constraint_option_reflection_onupdate(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def fk_constraint_option_reflection_onupdate_restrict(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def temp_table_names(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def has_temp_table(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def temporary_views(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def create_or_replace_view(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def index_reflects_included_columns(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def indexes_check_column_order(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def indexes_with_expressions(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def reflect_indexes_with_expressions(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def inline_check_constraint_reflection(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def check_constraint_reflection(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def unicode_ddl(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def datetime_interval(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def datetime_timezone(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def time_timezone(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def timestamp_microseconds(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def datetime_historic(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def datetime_timezone_historic(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def date_historic(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def autocommit(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def skip_autocommit_rollback(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def isolation_level(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def array_type(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def json_type(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def precision_numerics_enotation_small(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def precision_numerics_many_significant_digits(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def server_defaults(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def expression_server_defaults(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def aggregate_order_by(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def precision_numerics_retains_significant_digits(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def infinity_floats(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def float_or_double_precision_behaves_generically(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def savepoints(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def update_from(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def delete_from(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def order_by_label_with_expression(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def computed_columns(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def computed_columns_stored(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def computed_columns_virtual(self) -> exclusions.compound:
        return exclusions.only_if("postgresql >= 18", "VIRTUAL generated columns came with PostgreSQL 18")

    @property
    def computed_columns_default_persisted(self) -> exclusions.compound:
        # GENERATED ALWAYS AS (...) without STORED is VIRTUAL from PostgreSQL 18 on.
        return exclusions.only_if("postgresql < 18", "PostgreSQL 18 made VIRTUAL the default")

    @property
    def computed_columns_reflect_persisted(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def supports_distinct_on(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def identity_columns(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def identity_columns_standard(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def regexp_match(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def regexp_replace(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def fetch_first(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def fetch_ties(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def fetch_no_order_by(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def fetch_offset_with_options(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def fetch_expression(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def unique_constraints_reflect_as_index(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def reflect_table_options(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def materialized_views(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def supports_bitwise_or(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def supports_bitwise_and(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def supports_bitwise_not(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def supports_bitwise_xor(self) -> exclusions.compound:
        return exclusions.open()

    @property
    def supports_bitwise_shift(self) -> exclusions.compound:
        return exclusions.open()
