//! A billing row's time as each SQL backend stores it: `INTEGER` microseconds since the Unix
//! epoch (UTC) on SQLite, through [`appforge_core::db::encode_time`] like every appforge
//! SQLite table; `timestamptz` on PostgreSQL.

use chrono::{DateTime, Utc};

/// A time bound to, or read from, a SQL store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Time(pub(crate) DateTime<Utc>);

#[cfg(feature = "sqlite")]
mod sqlite {
    use appforge_core::db::{decode_time, encode_time};
    use sqlx::encode::IsNull;
    use sqlx::error::BoxDynError;
    use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
    use sqlx::{Decode, Encode, Sqlite, Type};

    use super::Time;

    impl Type<Sqlite> for Time {
        fn type_info() -> SqliteTypeInfo {
            <i64 as Type<Sqlite>>::type_info()
        }

        fn compatible(ty: &SqliteTypeInfo) -> bool {
            <i64 as Type<Sqlite>>::compatible(ty)
        }
    }

    impl Encode<'_, Sqlite> for Time {
        fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
            <i64 as Encode<'_, Sqlite>>::encode(encode_time(self.0), buf)
        }
    }

    impl<'r> Decode<'r, Sqlite> for Time {
        fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
            let micros = <i64 as Decode<'r, Sqlite>>::decode(value)?;
            Ok(Self(decode_time(micros)?))
        }
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use chrono::{DateTime, Utc};
    use sqlx::encode::IsNull;
    use sqlx::error::BoxDynError;
    use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
    use sqlx::{Decode, Encode, Postgres, Type};

    use super::Time;

    impl Type<Postgres> for Time {
        fn type_info() -> PgTypeInfo {
            <DateTime<Utc> as Type<Postgres>>::type_info()
        }

        fn compatible(ty: &PgTypeInfo) -> bool {
            <DateTime<Utc> as Type<Postgres>>::compatible(ty)
        }
    }

    impl Encode<'_, Postgres> for Time {
        fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
            <DateTime<Utc> as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
        }

        fn size_hint(&self) -> usize {
            <DateTime<Utc> as Encode<'_, Postgres>>::size_hint(&self.0)
        }
    }

    impl<'r> Decode<'r, Postgres> for Time {
        fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
            Ok(Self(<DateTime<Utc> as Decode<'r, Postgres>>::decode(
                value,
            )?))
        }
    }
}
