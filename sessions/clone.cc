#include "sessions/clone.h"

#include <git2.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "sessions/keys.h"
#include "sessions/known_hosts.h"
#include "sessions/store.h"
#include "util/base64.h"
#include "util/error.h"
#include "util/remove_tree.h"
#include "util/strings.h"

namespace avm::sessions {

namespace fs = std::filesystem;

namespace {

// ---- libgit2 ownership ------------------------------------------------------

std::string last_git_error();

void libgit2_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { git_libgit2_init(); });  // never shut down: process lifetime
}

// Debian's libgit2 verifies TLS servers with mbedTLS against a built-in CA
// bundle only. Honour SSL_CERT_FILE and SSL_CERT_DIR as OpenSSL does (in
// place of the system's CAs), so a private CA is trusted the usual way.
// The setting is process-wide: it is brought in line with the environment
// before each clone.
void apply_ca_locations() {
  static std::mutex m;
  static std::string applied;  // file '\n' dir in force; empty: libgit2's default
  const char* f = std::getenv("SSL_CERT_FILE");
  const char* d = std::getenv("SSL_CERT_DIR");
  std::string file = f && *f ? f : "", dir = d && *d ? d : "";
  std::string want = file.empty() && dir.empty() ? "" : file + '\n' + dir;
  std::lock_guard lock(m);
  if (want == applied) return;
  if (want.empty()) {
    std::error_code ec;
    file = "/etc/ssl/certs/ca-certificates.crt";  // the system's, as libgit2 was built
    if (!fs::exists(file, ec)) file.clear(), dir = "/etc/ssl/certs";
  }
  if (git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, file.empty() ? nullptr : file.c_str(),
                       dir.empty() ? nullptr : dir.c_str()) != 0)
    throw Error("cannot load the trusted certificates from " + (file.empty() ? dir : file) + ": " +
                    last_git_error(),
                "point SSL_CERT_FILE at a PEM file of CA certificates (or unset it)");
  applied = want;
}

template <class T, void (*Free)(T*)>
struct GitFree {
  void operator()(T* p) const { Free(p); }
};
using RepoPtr = std::unique_ptr<git_repository, GitFree<git_repository, git_repository_free>>;
using RefPtr = std::unique_ptr<git_reference, GitFree<git_reference, git_reference_free>>;
using ObjPtr = std::unique_ptr<git_object, GitFree<git_object, git_object_free>>;
using BranchIterPtr =
    std::unique_ptr<git_branch_iterator, GitFree<git_branch_iterator, git_branch_iterator_free>>;

std::string last_git_error() {
  const git_error* e = git_error_last();
  return e && e->message ? trim(e->message) : std::string("unknown libgit2 error");
}

bool contains(std::string_view hay, std::string_view needle) {
  return lower_ascii(hay).find(lower_ascii(needle)) != std::string::npos;
}

// ---- URLs -------------------------------------------------------------------

std::uint16_t default_port(UrlKind k) {
  switch (k) {
    case UrlKind::Http: return 443;
    case UrlKind::Git: return 9418;
    case UrlKind::Ssh: return 22;
    default: return 0;
  }
}

[[noreturn]] void bad_url(std::string_view url, const std::string& why) {
  throw Error("invalid repository URL " + shell_quote(redact_url(url)) + ": " + why,
              "use https://host/path, ssh://user@host/path, user@host:path, git://host/path, "
              "file:///path or a local path");
}

// The scp-like form of git: "[user@]host:path", a ':' before any '/'.
bool scp_like(std::string_view s) {
  auto colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  auto slash = s.find('/');
  return slash == std::string_view::npos || colon < slash;
}

// ---- state shared with libgit2's callbacks ----------------------------------

// libgit2's payload is the RemoteAuth base (remote_credentials and
// remote_certificate read it); clone's own callbacks cast back down.
struct CloneState : RemoteAuth {
  // The remote is recorded without the URL's password.
  std::string remote_url;
  const CloneOptions* opts = nullptr;
  bool cancelled = false;
};
CloneState* clone_state(void* payload) { return static_cast<CloneState*>(static_cast<RemoteAuth*>(payload)); }

int on_transfer(const git_indexer_progress* s, void* payload) {
  auto* st = clone_state(payload);
  if (st->opts->cancel && st->opts->cancel->load()) {
    st->cancelled = true;
    return -1;
  }
  if (st->opts->progress) {
    CloneProgress p;
    p.received_objects = s->received_objects;
    p.indexed_objects = s->indexed_objects;
    p.total_objects = s->total_objects;
    p.indexed_deltas = s->indexed_deltas;
    p.total_deltas = s->total_deltas;
    p.received_bytes = s->received_bytes;
    p.phase = (s->total_objects > 0 && s->received_objects == s->total_objects && s->total_deltas > 0)
                  ? CloneProgress::Phase::Resolving
                  : CloneProgress::Phase::Receiving;
    try {
      st->opts->progress(p);
    } catch (...) {
      st->cancelled = true;
      return -1;
    }
  }
  return 0;
}

void on_checkout(const char*, size_t done, size_t total, void* payload) {
  auto* st = clone_state(payload);
  if (!st->opts->progress) return;
  CloneProgress p;
  p.phase = CloneProgress::Phase::CheckingOut;
  p.checkout_done = done;
  p.checkout_total = total;
  try {
    st->opts->progress(p);
  } catch (...) {
  }
}

std::string local_user() {
  if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_name) return pw->pw_name;
  if (const char* u = std::getenv("USER")) return u;
  return "git";
}

}  // namespace

int remote_credentials(git_credential** out, const char*, const char* user_from_url, unsigned int allowed,
                       void* payload) {
  auto* st = static_cast<RemoteAuth*>(payload);
  std::string user = user_from_url && *user_from_url ? user_from_url : local_user();
  if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && !st->url_password.empty()) {
    if (st->password_tries++ == 0)
      return git_credential_userpass_plaintext_new(out, st->url_user.c_str(), st->url_password.c_str());
    st->auth_problem = "the server refused the user name and password given in the URL";
    git_error_set_str(GIT_ERROR_NET, st->auth_problem.c_str());
    return GIT_EAUTH;
  }
  if (allowed & GIT_CREDENTIAL_SSH_KEY) {
    const char* sock = std::getenv("SSH_AUTH_SOCK");
    if (!sock || !*sock) {
      st->auth_problem = "no ssh-agent is running (SSH_AUTH_SOCK is not set)";
      git_error_set_str(GIT_ERROR_SSH, st->auth_problem.c_str());
      return GIT_EAUTH;
    }
    if (st->agent_tries++ > 0) {
      st->auth_problem = "the server refused every key in ssh-agent for user '" + user + "'";
      git_error_set_str(GIT_ERROR_SSH, st->auth_problem.c_str());
      return GIT_EAUTH;
    }
    return git_credential_ssh_key_from_agent(out, user.c_str());
  }
  if (allowed & GIT_CREDENTIAL_USERNAME) return git_credential_username_new(out, user.c_str());
  st->auth_problem = "the server asks for a user name and password";
  git_error_set_str(GIT_ERROR_NET, st->auth_problem.c_str());
  return GIT_EAUTH;
}

namespace {

// The remote "origin", made with the URL minus its password.
int create_remote(git_remote** out, git_repository* repo, const char* name, const char*, void* payload) {
  auto* st = clone_state(payload);
  return git_remote_create(out, repo, name, st->remote_url.c_str());
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The user and password of "scheme://user:password@host/...", decoded;
// empty when the URL carries no password.
std::pair<std::string, std::string> url_credentials(std::string_view url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return {};
  std::string_view authority = url.substr(scheme_end + 3);
  authority = authority.substr(0, authority.find('/'));
  auto at = authority.rfind('@');
  if (at == std::string_view::npos) return {};
  std::string_view userinfo = authority.substr(0, at);
  auto colon = userinfo.find(':');
  if (colon == std::string_view::npos) return {};
  return {percent_decode(userinfo.substr(0, colon)), percent_decode(userinfo.substr(colon + 1))};
}

std::string ssh_type_name(git_cert_ssh_raw_type_t t) {
  switch (t) {
    case GIT_CERT_SSH_RAW_TYPE_RSA: return "ssh-rsa";
    case GIT_CERT_SSH_RAW_TYPE_DSS: return "ssh-dss";
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_256: return "ecdsa-sha2-nistp256";
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_384: return "ecdsa-sha2-nistp384";
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_521: return "ecdsa-sha2-nistp521";
    case GIT_CERT_SSH_RAW_TYPE_KEY_ED25519: return "ssh-ed25519";
    default: return "";
  }
}

}  // namespace

// libgit2 1.5 does not read known_hosts itself: without this check it would
// accept any SSH host key.
int remote_certificate(git_cert* cert, int valid, const char* host, void* payload) {
  auto* st = static_cast<RemoteAuth*>(payload);
  if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2) return valid ? 0 : GIT_PASSTHROUGH;
  auto* hk = reinterpret_cast<git_cert_hostkey*>(cert);
  std::string h = host && *host ? host : st->url.host;
  std::string name = h + (st->url.port == 22 ? "" : ":" + std::to_string(st->url.port));
  if (!(hk->type & GIT_CERT_SSH_RAW) || !hk->hostkey) {
    st->hostkey_error = "cannot check the SSH host key of " + name + ": libgit2 did not pass it on";
    git_error_set_str(GIT_ERROR_SSH, st->hostkey_error.c_str());
    return GIT_ECERTIFICATE;
  }
  std::string type = ssh_type_name(hk->raw_type);
  std::string blob = base64_encode(std::string_view(hk->hostkey, hk->hostkey_len));
  std::string fp;
  if (hk->type & GIT_CERT_SSH_SHA256) {
    fp = base64_encode(std::string_view(reinterpret_cast<const char*>(hk->hash_sha256), 32));
    while (!fp.empty() && fp.back() == '=') fp.pop_back();
    fp = "SHA256:" + fp;
  }
  HostKeyCheck c;
  try {
    c = check_known_host(h, st->url.port, type, blob, default_known_hosts_files());
  } catch (const Error& e) {
    st->hostkey_error = e.what();
    st->hostkey_hint = e.hint();
    git_error_set_str(GIT_ERROR_SSH, st->hostkey_error.c_str());
    return GIT_ECERTIFICATE;
  }
  std::string key = type + (fp.empty() ? "" : " key " + fp);
  std::string port_opt = st->url.port == 22 ? "" : "-p " + std::to_string(st->url.port) + " ";
  switch (c.verdict) {
    case HostKeyVerdict::Match: return 0;
    case HostKeyVerdict::Mismatch:
      st->hostkey_error = "the SSH host key of " + name + " (" + key + ") differs from the one in " +
                          c.detail + ": someone may be intercepting the connection";
      st->hostkey_hint =
          "if the server's key really changed, remove the old line (ssh-keygen -R '" +
          known_hosts_name(h, st->url.port) + "') and check the new fingerprint";
      break;
    case HostKeyVerdict::Revoked:
      st->hostkey_error = "the SSH host key of " + name + " (" + key + ") is revoked in " + c.detail;
      st->hostkey_hint = "ask the server's administrator";
      break;
    case HostKeyVerdict::Unknown:
      st->hostkey_error = "the SSH host key of " + name + " (" + key + ") is not in known_hosts";
      st->hostkey_hint = "check the fingerprint with the server's administrator, then record it "
                         "by connecting once with OpenSSH: ssh " + port_opt + h;
      break;
  }
  git_error_set_str(GIT_ERROR_SSH, st->hostkey_error.c_str());
  return GIT_ECERTIFICATE;
}

namespace {

// ---- errors -----------------------------------------------------------------

std::string endpoint(const ParsedUrl& u) {
  if (u.host.empty()) return "";
  std::string h = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
  return h + ":" + std::to_string(u.port);
}

[[noreturn]] void throw_clone_error(int rc, const CloneState& st, const std::string& display) {
  std::string msg = last_git_error();
  const ParsedUrl& u = st.url;
  if (st.cancelled) throw Error("clone of " + display + " cancelled");
  if (!st.hostkey_error.empty()) throw Error(st.hostkey_error, st.hostkey_hint);
  if (rc == GIT_ECERTIFICATE || (u.kind == UrlKind::Http && contains(msg, "certificate")))
    throw Error("the TLS certificate of " + endpoint(u) + " is not valid for " + u.host +
                    " or not signed by a trusted CA (" + msg + "); refusing to clone " + display,
                "if the server uses a private CA, point SSL_CERT_FILE at its certificate (PEM); "
                "otherwise check the URL's host name");

  static constexpr std::string_view unreachable[] = {
      "failed to connect",       "connection refused",  "could not resolve",
      "failed to resolve",       "name or service not", "no route to host",
      "network is unreachable",  "timed out",           "temporary failure in name resolution",
      "failed getting banner",   "connection reset",    "unable to exchange encryption keys",
      "failed to start ssh session", "no address associated"};
  bool is_auth = rc == GIT_EAUTH || !st.auth_problem.empty() || contains(msg, "authentication") ||
                 contains(msg, "status code: 401") || contains(msg, "status code: 403");
  if (is_auth) {
    std::string why = st.auth_problem.empty() ? msg : st.auth_problem;
    std::string hint =
        u.kind == UrlKind::Ssh
            ? "load a key the server accepts into ssh-agent (ssh-add) and check SSH_AUTH_SOCK"
        : st.password_tries > 0
            ? "check the user name and password (or token) in the URL"
            : "agent-vm does not ask for passwords: use an ssh URL with your key in ssh-agent, or "
              "clone the repository yourself and pass its local path";
    throw Error("authentication failed for " + display + ": " + why, hint);
  }
  for (auto needle : unreachable) {
    if (contains(msg, needle)) {
      std::string where = u.host.empty() ? display : endpoint(u);
      throw Error("cannot reach " + where + " to clone " + display + " (" + msg + ")",
                  "check the URL, and that the server is up and reachable from this machine");
    }
  }
  if (rc == GIT_ENOTFOUND || contains(msg, "not found") || contains(msg, "could not find repository") ||
      contains(msg, "not exported") || contains(msg, "no such repository") ||
      contains(msg, "repository not found") || contains(msg, "does not appear to be a git repository") ||
      contains(msg, "status code: 404") || contains(msg, "not a git repository")) {
    throw Error("no git repository at " + display + " (" + msg + ")",
                "check the URL or path; a local path must be a git repository");
  }
  if (contains(msg, "not owned by current user"))
    throw Error("cannot clone " + display + ": " + msg,
                "the repository belongs to another user; run agent-vm as its owner, or mark it "
                "safe with: git config --global --add safe.directory <path>");
  if (contains(msg, "unsupported url protocol"))
    throw Error("cannot clone " + display + ": " + msg,
                "this libgit2 lacks that transport; clone it yourself and pass the local path");
  throw Error("cannot clone " + display + ": " + msg, "check the URL");
}

// ---- after the fetch --------------------------------------------------------

std::vector<std::string> remote_branches(git_repository* repo) {
  std::vector<std::string> out;
  git_branch_iterator* raw = nullptr;
  if (git_branch_iterator_new(&raw, repo, GIT_BRANCH_REMOTE) != 0) return out;
  BranchIterPtr it(raw);
  git_reference* ref = nullptr;
  git_branch_t type;
  while (git_branch_next(&ref, &type, it.get()) == 0) {
    RefPtr own(ref);
    std::string name = git_reference_name(ref);
    constexpr std::string_view prefix = "refs/remotes/origin/";
    if (!name.starts_with(prefix)) continue;
    name = name.substr(prefix.size());
    if (name == "HEAD") continue;
    out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string some_branches(const std::vector<std::string>& b) {
  if (b.empty()) return "it has no branches";
  // The usual defaults first, then the rest in order.
  std::vector<std::string> ordered;
  for (const char* d : {"main", "master"})
    if (std::find(b.begin(), b.end(), d) != b.end()) ordered.push_back(d);
  for (const auto& n : b)
    if (n != "main" && n != "master") ordered.push_back(n);
  std::string out = "branches there: ";
  constexpr std::size_t kMax = 8;
  for (std::size_t i = 0; i < ordered.size() && i < kMax; ++i) out += (i ? ", " : "") + ordered[i];
  if (ordered.size() > kMax) out += " and " + std::to_string(ordered.size() - kMax) + " more";
  return out;
}

ObjPtr peel_commit(git_object* obj) {
  git_object* c = nullptr;
  if (git_object_peel(&c, obj, GIT_OBJECT_COMMIT) != 0) return nullptr;
  return ObjPtr(c);
}

ObjPtr lookup_ref_commit(git_repository* repo, const std::string& name) {
  git_reference* r = nullptr;
  if (git_reference_lookup(&r, repo, name.c_str()) != 0) return nullptr;
  RefPtr ref(r);
  git_object* c = nullptr;
  if (git_reference_peel(&c, ref.get(), GIT_OBJECT_COMMIT) != 0) return nullptr;
  return ObjPtr(c);
}

bool looks_like_sha(std::string_view s) {
  return s.size() >= 4 && s.size() <= 40 &&
         s.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos;
}

// What to check out.
struct Target {
  ObjPtr commit;
  std::string name;
  CloneResult::RefKind kind = CloneResult::RefKind::Branch;
};

Target pick_target(git_repository* repo, const std::string& ref, const std::string& display) {
  Target t;
  if (ref.empty()) {
    // The remote's HEAD, as the clone recorded it.
    git_reference* head = nullptr;
    if (git_repository_head(&head, repo) == 0) {
      RefPtr own(head);
      git_object* c = nullptr;
      if (git_reference_peel(&c, head, GIT_OBJECT_COMMIT) == 0) {
        t.commit.reset(c);
        t.name = git_reference_shorthand(head);
        return t;
      }
    }
    auto branches = remote_branches(repo);
    if (branches.empty())
      throw Error("the repository " + display + " is empty: there is nothing to check out",
                  "push a commit to it first");
    if ((t.commit = lookup_ref_commit(repo, "refs/remotes/origin/main"))) {
      t.name = "main";
      return t;
    }
    throw Error("the repository " + display + " has no default branch (HEAD) and no 'main'",
                "pass --ref with a branch; " + some_branches(branches));
  }
  if ((t.commit = lookup_ref_commit(repo, "refs/remotes/origin/" + ref))) {
    t.name = ref;
    return t;
  }
  if ((t.commit = lookup_ref_commit(repo, "refs/tags/" + ref))) {
    t.name = ref;
    t.kind = CloneResult::RefKind::Tag;
    return t;
  }
  if (looks_like_sha(ref)) {
    git_object* obj = nullptr;
    int rc = git_revparse_single(&obj, repo, ref.c_str());
    if (rc == GIT_EAMBIGUOUS)
      throw Error("--ref " + ref + " is ambiguous: several objects in " + display + " start with it",
                  "give more characters of the commit id");
    if (rc == 0) {
      ObjPtr own(obj);
      if ((t.commit = peel_commit(obj))) {
        t.name = ref;
        t.kind = CloneResult::RefKind::Commit;
        return t;
      }
    }
  }
  throw Error("no branch, tag or commit '" + ref + "' in " + display,
              "pass an existing one to --ref; " + some_branches(remote_branches(repo)));
}

std::string oid_hex(const git_oid* oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, oid);
  return buf;
}

// Removes `dest` unless released: a failed clone leaves nothing behind.
class DestGuard {
 public:
  explicit DestGuard(fs::path p) : p_(std::move(p)) {}
  ~DestGuard() {
    if (!p_.empty()) {
      try {
        remove_tree(p_);
      } catch (...) {
      }
    }
  }
  void release() { p_.clear(); }

 private:
  fs::path p_;
};

// Whether checking out could run a filter (CRLF conversion, ident, a filter
// driver). They act only through attributes or core.autocrlf, but libgit2
// looks up every file's attributes (a realpath() and an attribute walk per
// file) unless told not to: on a 10,000-file checkout that is most of the
// difference to `git clone`. Filters stay on whenever anything could ask for
// one: a .gitattributes anywhere in the tree, info/attributes, a global or
// configured attributes file, or core.autocrlf other than false.
bool checkout_may_filter(git_repository* repo, git_object* commit) {
  git_config* raw_cfg = nullptr;
  if (git_repository_config_snapshot(&raw_cfg, repo) != 0) return true;
  std::unique_ptr<git_config, GitFree<git_config, git_config_free>> cfg(raw_cfg);
  git_config_entry* e = nullptr;
  if (git_config_get_entry(&e, cfg.get(), "core.autocrlf") == 0) {
    std::string v = e->value ? e->value : "";
    git_config_entry_free(e);
    if (v != "false" && v != "no" && v != "off" && v != "0") return true;
  }
  if (git_config_get_entry(&e, cfg.get(), "core.attributesfile") == 0) {
    git_config_entry_free(e);
    return true;
  }
  std::error_code ec;
  if (fs::exists(fs::path(git_repository_path(repo)) / "info" / "attributes", ec)) return true;
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  const char* home = std::getenv("HOME");
  fs::path global = xdg && *xdg ? fs::path(xdg) / "git" / "attributes"
                                : fs::path(home ? home : "") / ".config" / "git" / "attributes";
  if ((home || xdg) && fs::exists(global, ec)) return true;
  if (fs::exists("/etc/gitattributes", ec)) return true;  // the system attributes file

  git_tree* raw_tree = nullptr;
  if (git_commit_tree(&raw_tree, reinterpret_cast<const git_commit*>(commit)) != 0) return true;
  std::unique_ptr<git_tree, GitFree<git_tree, git_tree_free>> tree(raw_tree);
  bool found = false;
  auto visit = [](const char*, const git_tree_entry* entry, void* payload) -> int {
    if (std::string_view(git_tree_entry_name(entry)) == ".gitattributes") {
      *static_cast<bool*>(payload) = true;
      return -1;  // stop the walk
    }
    return 0;
  };
  int rc = git_tree_walk(tree.get(), GIT_TREEWALK_PRE, visit, &found);
  return found || (rc != 0 && rc != -1 && rc != GIT_EUSER);
}

}  // namespace

std::string describe(const CloneProgress& p) {
  char buf[128];
  switch (p.phase) {
    case CloneProgress::Phase::Receiving: {
      double mib = static_cast<double>(p.received_bytes) / (1024.0 * 1024.0);
      if (p.total_objects)
        std::snprintf(buf, sizeof buf, "%u%% (%u/%u objects, %.1f MiB)",
                      p.received_objects * 100 / p.total_objects, p.received_objects, p.total_objects,
                      mib);
      else
        std::snprintf(buf, sizeof buf, "connecting");
      return buf;
    }
    case CloneProgress::Phase::Resolving:
      std::snprintf(buf, sizeof buf, "resolving deltas %u/%u", p.indexed_deltas, p.total_deltas);
      return buf;
    case CloneProgress::Phase::CheckingOut:
      std::snprintf(buf, sizeof buf, "checking out %zu/%zu files", p.checkout_done, p.checkout_total);
      return buf;
  }
  return {};
}

std::string redact_url(std::string_view url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::string(url);
  auto auth_start = scheme_end + 3;
  auto auth_end = url.find('/', auth_start);
  std::string_view authority = url.substr(auth_start, auth_end == std::string_view::npos
                                                          ? std::string_view::npos
                                                          : auth_end - auth_start);
  auto at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  auto colon = authority.substr(0, at).find(':');
  if (colon == std::string_view::npos) return std::string(url);
  return std::string(url.substr(0, auth_start)) + std::string(authority.substr(0, colon)) +
         std::string(url.substr(auth_start + at));
}

ParsedUrl parse_repo_url(std::string_view in) {
  std::string url = trim(in);
  if (url.empty()) bad_url(in, "it is empty");
  ParsedUrl u;
  auto sep = url.find("://");
  if (sep != std::string::npos) {
    std::string scheme = lower_ascii(url.substr(0, sep));
    if (scheme == "http" || scheme == "https")
      u.kind = UrlKind::Http;
    else if (scheme == "git")
      u.kind = UrlKind::Git;
    else if (scheme == "ssh" || scheme == "git+ssh" || scheme == "ssh+git")
      u.kind = UrlKind::Ssh;
    else if (scheme == "file")
      u.kind = UrlKind::File;
    else
      bad_url(in, "the scheme '" + scheme + "' is not supported");
    std::string rest = url.substr(sep + 3);
    auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    u.path = slash == std::string::npos ? "/" : rest.substr(slash);
    if (u.kind == UrlKind::File) {
      if (!authority.empty() && authority != "localhost")
        bad_url(in, "file:// URLs name a local path (file:///path)");
      if (u.path.size() <= 1) bad_url(in, "it has no path");
      return u;
    }
    if (auto at = authority.rfind('@'); at != std::string::npos) {
      u.user = authority.substr(0, at);
      if (auto c = u.user.find(':'); c != std::string::npos) u.user.resize(c);
      authority = authority.substr(at + 1);
    }
    std::string port;
    if (!authority.empty() && authority[0] == '[') {
      auto close = authority.find(']');
      if (close == std::string::npos) bad_url(in, "an IPv6 address lacks its ']'");
      u.host = authority.substr(1, close - 1);
      if (close + 1 < authority.size()) {
        if (authority[close + 1] != ':') bad_url(in, "unexpected text after the host");
        port = authority.substr(close + 2);
      }
    } else if (auto c = authority.find(':'); c != std::string::npos) {
      u.host = authority.substr(0, c);
      port = authority.substr(c + 1);
    } else {
      u.host = authority;
    }
    if (u.host.empty()) bad_url(in, "it has no host");
    u.port = default_port(u.kind);
    if (u.kind == UrlKind::Http && scheme == "http") u.port = 80;
    if (!port.empty()) {
      if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
          std::stoul(port) == 0 || std::stoul(port) > 65535)
        bad_url(in, "the port '" + port + "' is not a number from 1 to 65535");
      u.port = static_cast<std::uint16_t>(std::stoul(port));
    }
    return u;
  }
  if (url[0] != '/' && url[0] != '.' && scp_like(url)) {
    u.kind = UrlKind::Ssh;
    auto colon = url.find(':');
    std::string authority = url.substr(0, colon);
    u.path = url.substr(colon + 1);
    if (auto at = authority.rfind('@'); at != std::string::npos) {
      u.user = authority.substr(0, at);
      authority = authority.substr(at + 1);
    }
    u.host = authority;
    if (u.host.empty()) bad_url(in, "it has no host");
    if (u.path.empty()) bad_url(in, "it has no path after the ':'");
    u.port = 22;
    return u;
  }
  u.kind = UrlKind::LocalPath;
  u.path = url;
  return u;
}

CloneResult clone_repo(std::string_view url_in, const fs::path& dest, const CloneOptions& opts) {
  libgit2_init_once();
  CloneState st;
  st.opts = &opts;
  st.url = parse_repo_url(url_in);
  std::string clone_url = trim(url_in);
  std::string display = redact_url(clone_url);

  if (st.url.kind == UrlKind::LocalPath || st.url.kind == UrlKind::File) {
    fs::path p = fs::absolute(st.url.path).lexically_normal();
    std::error_code ec;
    if (!fs::is_directory(p, ec))
      throw Error("no git repository at " + p.string() + ": no such folder",
                  "check the path; it must be a git repository (a working tree or a bare one)");
    if (st.url.kind == UrlKind::LocalPath) {
      std::string s = p.string();
      if (s.size() > 1 && s.back() == '/') s.pop_back();
      clone_url = display = s;
    }
  }
  {
    std::error_code ec;
    if (fs::exists(fs::symlink_status(dest, ec)))
      throw Error("cannot clone into " + dest.string() + ": it already exists");
  }
  DestGuard guard(dest);

  git_clone_options co;
  git_clone_options_init(&co, GIT_CLONE_OPTIONS_VERSION);
  co.checkout_opts.checkout_strategy = GIT_CHECKOUT_NONE;  // checked out below, once the ref is known
  // A plain path or a file:// URL: copy the objects (never hard-link them:
  // the guest must not be able to reach the source's files). git sends
  // file:// through its pack transport, but libgit2's packs and indexes every
  // object anew, remapping the pack per object: ten times git's time on a
  // 10,000-file repository, where the copy is on a par with git's.
  co.local = GIT_CLONE_LOCAL_NO_LINKS;
  co.fetch_opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_ALL;
  co.fetch_opts.callbacks.transfer_progress = on_transfer;
  co.fetch_opts.callbacks.credentials = remote_credentials;
  co.fetch_opts.callbacks.certificate_check = remote_certificate;
  co.fetch_opts.callbacks.payload = static_cast<RemoteAuth*>(&st);
  if (st.url.kind == UrlKind::Http) {
    std::tie(st.url_user, st.url_password) = url_credentials(clone_url);
    if (!st.url_password.empty()) {
      st.remote_url = display;
      co.remote_cb = create_remote;
      co.remote_cb_payload = static_cast<RemoteAuth*>(&st);
    }
    apply_ca_locations();
  }

  git_repository* raw = nullptr;
  int rc = git_clone(&raw, clone_url.c_str(), dest.c_str(), &co);
  if (rc != 0) throw_clone_error(rc, st, display);
  RepoPtr repo(raw);
  // A local clone copies objects without progress callbacks: look again.
  auto check_cancel = [&] {
    if (opts.cancel && opts.cancel->load()) throw Error("clone of " + display + " cancelled");
  };
  check_cancel();

  git_reference* head_ref = nullptr;
  std::string default_branch;
  if (git_repository_head(&head_ref, repo.get()) == 0) {
    RefPtr own(head_ref);
    if (git_reference_is_branch(head_ref)) default_branch = git_reference_shorthand(head_ref);
  } else if (git_reference_lookup(&head_ref, repo.get(), "HEAD") == 0) {
    RefPtr own(head_ref);
    if (const char* t = git_reference_symbolic_target(head_ref); t && std::string_view(t).starts_with("refs/heads/"))
      default_branch = std::string(t).substr(11);
  }

  Target t = pick_target(repo.get(), opts.ref, display);
  const git_oid* oid = git_object_id(t.commit.get());

  git_checkout_options cko;
  git_checkout_options_init(&cko, GIT_CHECKOUT_OPTIONS_VERSION);
  cko.checkout_strategy = GIT_CHECKOUT_FORCE;  // the work tree is ours and empty
  cko.disable_filters = checkout_may_filter(repo.get(), t.commit.get()) ? 0 : 1;
  cko.progress_cb = on_checkout;
  cko.progress_payload = static_cast<RemoteAuth*>(&st);
  if (git_checkout_tree(repo.get(), t.commit.get(), &cko) != 0)
    throw Error("cannot check out " + t.name + " of " + display + ": " + last_git_error());
  check_cancel();

  CloneResult res;
  res.url = display;
  res.commit = oid_hex(oid);
  res.checked_out = t.name;
  res.kind = t.kind;
  if (t.kind == CloneResult::RefKind::Branch) {
    if (t.name != default_branch) {
      // Like `git clone --branch`: a local branch tracking the remote one.
      git_reference* b = nullptr;
      if (git_branch_create(&b, repo.get(), t.name.c_str(),
                            reinterpret_cast<const git_commit*>(t.commit.get()), 0) != 0)
        throw Error("cannot create the branch " + t.name + ": " + last_git_error());
      RefPtr own(b);
      if (git_branch_set_upstream(b, ("origin/" + t.name).c_str()) != 0)
        throw Error("cannot set the upstream of " + t.name + ": " + last_git_error());
    }
    if (git_repository_set_head(repo.get(), ("refs/heads/" + t.name).c_str()) != 0)
      throw Error("cannot point HEAD at " + t.name + ": " + last_git_error());
    if (!default_branch.empty() && default_branch != t.name) {
      git_reference* old = nullptr;
      if (git_branch_lookup(&old, repo.get(), default_branch.c_str(), GIT_BRANCH_LOCAL) == 0) {
        RefPtr own(old);
        git_branch_delete(old);
      }
    }
  } else {
    res.detached = true;
    if (git_repository_set_head_detached(repo.get(), oid) != 0)
      throw Error("cannot point HEAD at " + t.name + ": " + last_git_error());
    if (!default_branch.empty()) {
      git_reference* old = nullptr;
      if (git_branch_lookup(&old, repo.get(), default_branch.c_str(), GIT_BRANCH_LOCAL) == 0) {
        RefPtr own(old);
        git_branch_delete(old);
      }
    }
  }
  guard.release();
  return res;
}

}  // namespace avm::sessions
