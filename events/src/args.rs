//! Command-line flags that several services share and no other module of
//! this crate owns: where the read models live ([`ViewsArgs`], the
//! projector's and the query API's), and reading any group of flags from
//! the environment alone ([`from_env`]), as the test binaries that tests
//! start as processes are configured.

/// Where the read models live: the views' PostgreSQL database and the
/// Redis cache in front of it. The projector writes both and the query API
/// reads both, so they take the same flags. Both URLs may carry a password,
/// so `--help` does not print the variables' values.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ViewsArgs {
    /// The read-model database (the projector creates and migrates it when
    /// missing; the query API only reads it).
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "postgres://postgres@127.0.0.1:15432/commerce"
    )]
    pub database_url: String,
    /// The Redis cache in front of the read-model database.
    #[arg(
        long,
        env = "REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:16379"
    )]
    pub redis_url: String,
}

/// The flag group `A` as its environment variables and defaults alone give
/// it (no command line).
pub fn from_env<A>() -> Result<A, clap::Error>
where
    A: clap::Args + clap::FromArgMatches,
{
    let matches = A::augment_args(clap::Command::new("env")).try_get_matches_from(["env"])?;
    A::from_arg_matches(&matches)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        views: ViewsArgs,
    }

    #[test]
    fn the_flags_keep_their_names() {
        let cli = Cli::parse_from([
            "service",
            "--database-url",
            "postgres://db/views",
            "--redis-url",
            "redis://cache",
        ]);
        assert_eq!(
            cli.views,
            ViewsArgs {
                database_url: "postgres://db/views".into(),
                redis_url: "redis://cache".into(),
            }
        );
    }

    #[test]
    fn help_does_not_print_the_urls_which_may_hold_passwords() {
        use clap::CommandFactory;
        let command = Cli::command();
        let shown: Vec<_> = command
            .get_arguments()
            .filter(|arg| arg.get_env().is_some() && !arg.is_hide_env_values_set())
            .map(|arg| arg.get_id().to_string())
            .collect();
        assert!(shown.is_empty(), "{shown:?}");
    }

    #[test]
    fn from_env_reads_the_variables_else_the_defaults() {
        let var = |name: &str, default: &str| std::env::var(name).unwrap_or(default.into());
        let views: ViewsArgs = from_env().unwrap();
        assert_eq!(
            views,
            ViewsArgs {
                database_url: var(
                    "DATABASE_URL",
                    "postgres://postgres@127.0.0.1:15432/commerce"
                ),
                redis_url: var("REDIS_URL", "redis://127.0.0.1:16379"),
            }
        );
    }
}
