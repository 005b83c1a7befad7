use std::io::Read;

use anyhow::Context;
use ocpp::{Frame, Policy};

#[derive(clap::Args)]
pub struct FrameArgs {
    /// The frame; read from standard input when absent.
    frame: Option<String>,
    /// Decode as the central system does (accept and report known deviations).
    #[arg(long)]
    lenient: bool,
}

pub fn run(args: FrameArgs) -> anyhow::Result<()> {
    let text = match args.frame {
        Some(f) => f,
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading standard input")?;
            s
        }
    };
    let policy = if args.lenient {
        Policy::Lenient
    } else {
        Policy::Strict
    };
    match Frame::parse(text.trim()) {
        Ok(None) => println!("ignored: unknown message type (OCPP-J receivers ignore it)"),
        Ok(Some(Frame::Call(call))) => match call.decode(policy) {
            Ok(decoded) => {
                println!("CALL {} id {}", decoded.value.action(), call.id);
                println!("{:#?}", decoded.value);
                for d in &decoded.deviations {
                    println!("deviation: {d}");
                }
            }
            Err(e) => println!("answer: {}", ocpp::frame::call_error(&call.id, &e)),
        },
        Ok(Some(Frame::CallResult { id, payload })) => {
            println!("CALLRESULT id {id}: {}", payload.get())
        }
        Ok(Some(Frame::CallError {
            id,
            code,
            description,
            details,
        })) => {
            println!(
                "CALLERROR id {id}: {code} {description:?} {}",
                details.get()
            )
        }
        Err(e) => match e.answer() {
            Some(answer) => println!("answer: {answer}"),
            None => println!("dropped (replies are never answered): {e}"),
        },
    }
    Ok(())
}
