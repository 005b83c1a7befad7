//! The Local Authorization List (LocalAuthListManagement profile): SendLocalList and
//! GetLocalListVersion. The list is durable and, with LocalAuthListEnabled, the first thing the
//! pile consults about an idTag (before its factory cards and its cache).

use ocpp::{
    GetLocalListVersionResponse, SendLocalListRequest, SendLocalListResponse, UpdateStatus,
    UpdateType,
};

use super::*;

impl ChargePoint {
    /// The list's version as GetLocalListVersion reports it: 0 while the list is empty.
    pub fn local_list_version(&self) -> i32 {
        self.durable.local_list_version()
    }

    /// What the list says of an idTag, when the list is in use.
    pub(super) fn local_list_entry(&self, id_tag: &str) -> Option<&IdTagInfo> {
        if !self.config.flag(keys::LOCAL_AUTH_LIST_ENABLED) {
            return None;
        }
        self.durable.listed(id_tag)
    }

    pub(super) fn get_local_list_version(&mut self, id: &str) {
        let list_version = self.local_list_version();
        self.respond(id, GetLocalListVersionResponse { list_version });
    }

    pub(super) fn send_local_list(&mut self, id: &str, r: SendLocalListRequest) {
        let status = self.update_local_list(r);
        self.respond(id, SendLocalListResponse { status });
    }

    fn update_local_list(&mut self, r: SendLocalListRequest) -> UpdateStatus {
        let entries = r.local_authorization_list.unwrap_or_default();
        let per_message = self.config.int(keys::SEND_LOCAL_LIST_MAX_LENGTH).max(0) as usize;
        let capacity = self.config.int(keys::LOCAL_AUTH_LIST_MAX_LENGTH).max(0) as usize;
        if entries.len() > per_message {
            return UpdateStatus::Failed;
        }
        let mut list = match r.update_type {
            UpdateType::Full => {
                // A full list gives every entry its verdict.
                if entries.iter().any(|e| e.id_tag_info.is_none()) {
                    return UpdateStatus::Failed;
                }
                BTreeMap::new()
            }
            UpdateType::Differential => {
                if r.list_version <= self.local_list_version() {
                    return UpdateStatus::VersionMismatch;
                }
                self.durable.local_list().clone()
            }
            UpdateType::Unrecognized(_) => return UpdateStatus::Failed,
        };
        for entry in entries {
            let key = entry.id_tag.as_str().to_ascii_lowercase();
            match entry.id_tag_info {
                Some(info) => {
                    list.insert(key, info);
                }
                // In a differential update, an entry without idTagInfo is removed.
                None => {
                    list.remove(&key);
                }
            }
        }
        if list.len() > capacity {
            return UpdateStatus::Failed;
        }
        self.durable.replace_local_list(list, r.list_version);
        // Durable before the answer leaves.
        self.persist();
        UpdateStatus::Accepted
    }
}
