#include "sessions/keys.h"

#include <libssh/libssh.h>

#include <memory>

#include "util/error.h"
#include "util/file.h"
#include "util/strings.h"

namespace avm::sessions {

namespace fs = std::filesystem;

namespace {

struct KeyFree {
  void operator()(ssh_key k) const { ssh_key_free(k); }
};
using Key = std::unique_ptr<std::remove_pointer_t<ssh_key>, KeyFree>;

struct CharFree {
  void operator()(char* s) const { ssh_string_free_char(s); }
};

Key generate_ed25519() {
  ssh_key raw = nullptr;
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) != SSH_OK || !raw)
    throw Error("cannot generate an ed25519 key (libssh)");
  return Key(raw);
}

std::string private_openssh(const Key& key) {
  char* b64 = nullptr;
  if (ssh_pki_export_privkey_base64(key.get(), nullptr, nullptr, nullptr, &b64) != SSH_OK || !b64)
    throw Error("cannot export a private key (libssh)");
  std::unique_ptr<char, CharFree> own(b64);
  std::string s(b64);
  if (s.empty() || s.back() != '\n') s += '\n';
  return s;
}

// "ssh-ed25519 AAAA..." (no comment).
std::string public_line(ssh_key key) {
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK || !b64)
    throw Error("cannot export a public key (libssh)");
  std::unique_ptr<char, CharFree> own(b64);
  const char* type = ssh_key_type_to_char(ssh_key_type(key));
  return std::string(type ? type : "ssh-ed25519") + " " + b64;
}

std::string one_line(std::string_view s) {
  std::string out;
  for (char c : s) out += (c == '\n' || c == '\r') ? ' ' : c;
  return out;
}

Key import_any(const fs::path& file) {
  ssh_key raw = nullptr;
  if (ssh_pki_import_pubkey_file(file.c_str(), &raw) == SSH_OK && raw) return Key(raw);
  if (ssh_pki_import_privkey_file(file.c_str(), nullptr, nullptr, nullptr, &raw) == SSH_OK && raw)
    return Key(raw);
  throw Error("cannot read the SSH key " + file.string(),
              "it is missing or not an OpenSSH key; the session's ssh/ folder may be damaged");
}

}  // namespace

void generate_session_keys(const fs::path& ssh_dir, std::string_view comment) {
  make_private_dir(ssh_dir);
  KeyFiles f(ssh_dir);
  std::string c = one_line(comment);
  std::string tail = c.empty() ? "\n" : " " + c + "\n";

  Key client = generate_ed25519();
  Key host = generate_ed25519();
  std::string client_pub = public_line(client.get()) + tail;

  write_file_atomic(f.client_key, private_openssh(client), 0600);
  write_file_atomic(f.client_pub, client_pub, 0644);
  write_file_atomic(f.host_key, private_openssh(host), 0600);
  write_file_atomic(f.host_pub, public_line(host.get()) + tail, 0644);
  write_file_atomic(f.authorized_keys, client_pub, 0600);
}

std::string known_hosts_name(std::string_view host, std::uint16_t port) {
  if (port == 22) return std::string(host);
  std::string out = "[";  // built in steps: GCC 12 warns falsely on "[" + std::string
  out += host;
  out += "]:";
  out += std::to_string(port);
  return out;
}

void pin_host_key(const fs::path& ssh_dir, std::uint16_t port, std::string_view host) {
  KeyFiles f(ssh_dir);
  Key key = import_any(f.host_pub);
  write_file_atomic(f.known_hosts, known_hosts_name(host, port) + " " + public_line(key.get()) + "\n",
                    0644);
}

std::string key_fingerprint(const fs::path& key_file) {
  Key key = import_any(key_file);
  unsigned char* hash = nullptr;
  size_t len = 0;
  if (ssh_get_publickey_hash(key.get(), SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != 0)
    throw Error("cannot hash the key " + key_file.string());
  char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
  ssh_clean_pubkey_hash(&hash);
  if (!fp) throw Error("cannot hash the key " + key_file.string());
  std::unique_ptr<char, CharFree> own(fp);
  return fp;
}

}  // namespace avm::sessions
