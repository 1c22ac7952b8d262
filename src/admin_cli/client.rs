//! One admin command: the call resolved (an application named by id,
//! client ID or name; a scope's type read from the tree), sent, and the
//! answer printed as a table, JSON or YAML.

use super::session::{Failure, Session, block_on, segment};
use super::{Call, Connection, table};
use serde_json::Value;

pub fn run(conn: &Connection, mut call: Call) -> Result<(), Failure> {
    let (value, view) = block_on(async {
        let session = Session::open(conn).await?;
        if let Some(reference) = call.app.take() {
            let id = session.resolve_app(&reference).await?;
            call.path = call.path.replace(super::APP, &segment(&id));
            if let Some(body) = &mut call.body {
                for v in body.as_object_mut().into_iter().flat_map(|o| o.values_mut()) {
                    if v == super::APP {
                        *v = Value::String(id.clone());
                    }
                }
            }
        }
        if let Some(body) = &mut call.body
            && body["scopeType"] == super::SCOPE_TYPE
        {
            let scope = body["scopeId"].as_str().unwrap_or_default().to_owned();
            body["scopeType"] = session.scope_type(&scope).await?.into();
        }
        let value = if call.all {
            session.all_pages(&call.path, &call.query).await?
        } else {
            session
                .call(call.method.clone(), &call.path, &call.query, call.body.as_ref())
                .await?
        };
        Ok((value, call.view))
    })?;
    print(conn, view, &value)
}

/// Prints an answer in the `--output` format the command line asked for.
pub fn print(conn: &Connection, view: table::View, value: &Value) -> Result<(), Failure> {
    match conn.output.as_str() {
        "json" if !value.is_null() => {
            println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
        }
        "yaml" if !value.is_null() => {
            let text =
                serde_yaml_ng::to_string(value).map_err(|e| Failure::Refused(format!("cannot write YAML: {e}")))?;
            print!("{text}");
        }
        "json" | "yaml" => {}
        _ => print!("{}", table::render(view, value)),
    }
    Ok(())
}
