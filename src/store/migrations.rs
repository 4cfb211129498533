//! The schema's migrations, embedded in the binary. Most are one SQL text for both databases
//! (`migrations/shared/`); only where the dialects differ (how an id column counts up) is there
//! a file per dialect (`migrations/{sqlite,postgres}/`). Append-only: sqlx records a checksum of
//! each applied migration and refuses to start if an applied one changed.

use super::Backend;

/// One migration: its SQL for both databases, or one text per dialect.
enum Sql {
    Shared(&'static str),
    Dialect { sqlite: &'static str, postgres: &'static str },
}

macro_rules! shared {
    ($file:literal) => {
        Sql::Shared(include_str!(concat!("../../migrations/shared/", $file)))
    };
}

macro_rules! dialect {
    ($file:literal) => {
        Sql::Dialect {
            sqlite: include_str!(concat!("../../migrations/sqlite/", $file)),
            postgres: include_str!(concat!("../../migrations/postgres/", $file)),
        }
    };
}

/// Version, description, SQL. The file names (tested) start with the version.
const MIGRATIONS: &[(i64, &str, &str, Sql)] = &[
    (1, "foundation", "0001_foundation.sql", dialect!("0001_foundation.sql")),
    (2, "presence and receipts", "0002_presence_receipts.sql", shared!("0002_presence_receipts.sql")),
    (3, "watches", "0003_watches.sql", shared!("0003_watches.sql")),
    (4, "rooms", "0004_rooms.sql", dialect!("0004_rooms.sql")),
    (5, "calls", "0005_calls.sql", dialect!("0005_calls.sql")),
    (6, "xmpp rooms", "0006_xmpp_rooms.sql", shared!("0006_xmpp_rooms.sql")),
    (7, "delivered", "0007_delivered.sql", shared!("0007_delivered.sql")),
    (8, "admin", "0008_admin.sql", shared!("0008_admin.sql")),
    (9, "instance", "0009_instance.sql", shared!("0009_instance.sql")),
    (10, "commands", "0010_commands.sql", shared!("0010_commands.sql")),
    (11, "sms", "0011_sms.sql", shared!("0011_sms.sql")),
    (12, "content", "0012_content.sql", shared!("0012_content.sql")),
    (13, "presence consent", "0013_presence_consent.sql", shared!("0013_presence_consent.sql")),
    (14, "sms daily usage", "0014_sms_daily_usage.sql", shared!("0014_sms_daily_usage.sql")),
    (15, "sms dlr parts", "0015_sms_dlr_parts.sql", shared!("0015_sms_dlr_parts.sql")),
    (16, "chatbot", "0016_chatbot.sql", dialect!("0016_chatbot.sql")),
    (17, "own groups", "0017_own_groups.sql", shared!("0017_own_groups.sql")),
    (18, "chatbot rooms and limits", "0018_chatbot_rooms_limits.sql", shared!("0018_chatbot_rooms_limits.sql")),
    (19, "chatbot images and mucs", "0019_chatbot_images_mucs.sql", shared!("0019_chatbot_images_mucs.sql")),
    (20, "phone presence and pickup", "0020_phone_presence_pickup.sql", shared!("0020_phone_presence_pickup.sql")),
    (21, "journal", "0021_journal.sql", dialect!("0021_journal.sql")),
    (22, "notification choices", "0022_notification_choices.sql", shared!("0022_notification_choices.sql")),
    (23, "linked messages", "0023_linked_messages.sql", shared!("0023_linked_messages.sql")),
    (24, "room member joined", "0024_room_member_joined.sql", shared!("0024_room_member_joined.sql")),
    (25, "archive acts", "0025_archive_acts.sql", shared!("0025_archive_acts.sql")),
    (26, "room phones", "0026_room_phones.sql", shared!("0026_room_phones.sql")),
];

/// The migrations for one database: version, description, SQL.
pub(super) fn for_backend(backend: Backend) -> impl Iterator<Item = (i64, &'static str, &'static str)> {
    MIGRATIONS.iter().map(move |(version, description, _, sql)| {
        let text = match (sql, backend) {
            (Sql::Shared(text), _) => text,
            (Sql::Dialect { sqlite, .. }, Backend::Sqlite) => sqlite,
            (Sql::Dialect { postgres, .. }, Backend::Postgres) => postgres,
        };
        (*version, *description, *text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// The only ways a dialect file may differ from its twin: how ids count up.
    const DIALECT_PAIRS: [(&str, &str); 2] = [
        ("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
        ("-- AUTOINCREMENT:", "-- IDENTITY:"),
    ];

    fn files(dir: &str) -> BTreeSet<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dir);
        std::fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .map(|entry| entry.expect("a directory entry").file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// Versions count up, each naming its file (branches worked on side by side take numbers
    /// handed out beforehand, so one may land before the numbers below it).
    #[test]
    fn versions_count_up_and_name_their_files() {
        let mut last = 0;
        for (version, _, file, _) in MIGRATIONS {
            assert!(*version > last, "{file} comes after version {last}");
            assert!(file.starts_with(&format!("{version:04}_")), "{file}");
            last = *version;
        }
    }

    /// A file added under `migrations/` but not listed here would never run; a shared one
    /// duplicated into a dialect folder would be edited in one place only.
    #[test]
    fn every_file_is_listed_once_in_its_place() {
        let (mut shared, mut dialect) = (BTreeSet::new(), BTreeSet::new());
        for (_, _, file, sql) in MIGRATIONS {
            match sql {
                Sql::Shared(_) => shared.insert(file.to_string()),
                Sql::Dialect { .. } => dialect.insert(file.to_string()),
            };
        }
        assert_eq!(files("shared"), shared);
        assert_eq!(files("sqlite"), dialect);
        assert_eq!(files("postgres"), dialect);
    }

    /// The two dialects of a migration make the same schema: they differ only in the known
    /// spellings. Catches a column added to one file and forgotten in the other.
    #[test]
    fn dialect_files_differ_only_in_dialect() {
        for (_, _, file, sql) in MIGRATIONS {
            let Sql::Dialect { sqlite, postgres } = sql else { continue };
            let as_postgres = DIALECT_PAIRS.iter().fold(sqlite.to_string(), |s, (lite, pg)| s.replace(lite, pg));
            assert_eq!(&as_postgres, postgres, "{file}: the dialects diverge");
            assert_ne!(sqlite, postgres, "{file} is the same for both: move it to migrations/shared/");
        }
    }
}
