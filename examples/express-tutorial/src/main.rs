//! Runs the Express session tutorial's app: `cargo run -p express-tutorial -- --help`.

use std::io::Write as _;
use std::process::ExitCode;

use express_tutorial::{
    KeySource, Options, SessionSettings, Signing, Tutorial, load_or_create_key, open_express_store,
    open_store, router,
};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run(Options::from_env()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("express-tutorial: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), String> {
    let mut settings = SessionSettings::for_address(options.listen);
    let signing = if options.express {
        settings = settings.express();
        Signing::Express(options.express_secrets())
    } else {
        Signing::Key(match options.key_source() {
            KeySource::Value(key) => key,
            KeySource::File(path) => load_or_create_key(&path)
                .map_err(|e| format!("signing key file {}: {}", path.display(), chain(&e)))?,
        })
    };
    let opened = if options.express {
        open_express_store(&options.store).await
    } else {
        open_store(&options.store).await
    }
    .map_err(|e| {
        let shown = express_tutorial::redact(&options.store);
        format!("session store {shown}: {}", chain(&e))
    })?;
    let tutorial = Tutorial {
        store: opened.store,
        store_info: opened.info,
        signing,
        settings,
        credentials: options.credentials(),
    };
    tracing::info!("sessions stored in {}", tutorial.store_info.url);
    let app = router(tutorial).map_err(|e| chain(&e))?;
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {}", options.listen, chain(&e)))?;
    let address = listener.local_addr().map_err(|e| chain(&e))?;
    // Tests and scripts read this line to learn the port (with --listen 127.0.0.1:0).
    println!("listening on http://{address}");
    let _ = std::io::stdout().flush();
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| chain(&e))?;
    drop(opened.cleanup);
    Ok(())
}

/// An error and its causes on one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
