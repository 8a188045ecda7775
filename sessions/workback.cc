#include "sessions/workback.h"

#include <fcntl.h>
#include <git2.h>
#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>
#include <git2/sys/repository.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "launcher/qemu_process.h"
#include "sessions/clone.h"
#include "sessions/lifecycle.h"
#include "sessions/repo_files.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/file.h"
#include "util/remove_tree.h"
#include "util/strings.h"
#include "util/temp_dir.h"

namespace avm::sessions {

namespace fs = std::filesystem;

namespace {

// ---- libgit2 ownership ------------------------------------------------------

void libgit2_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { git_libgit2_init(); });  // never shut down: process lifetime
}

template <class T, void (*Free)(T*)>
struct GitFree {
  void operator()(T* p) const { Free(p); }
};
template <class T, void (*Free)(T*)>
using GitPtr = std::unique_ptr<T, GitFree<T, Free>>;
using RepoPtr = GitPtr<git_repository, git_repository_free>;
using OdbPtr = GitPtr<git_odb, git_odb_free>;
using OdbObjPtr = GitPtr<git_odb_object, git_odb_object_free>;
using ConfigPtr = GitPtr<git_config, git_config_free>;
using IndexPtr = GitPtr<git_index, git_index_free>;
using CommitPtr = GitPtr<git_commit, git_commit_free>;
using TreePtr = GitPtr<git_tree, git_tree_free>;
using BlobPtr = GitPtr<git_blob, git_blob_free>;
using DiffPtr = GitPtr<git_diff, git_diff_free>;
using PatchPtr = GitPtr<git_patch, git_patch_free>;
using RefPtr = GitPtr<git_reference, git_reference_free>;
using WalkPtr = GitPtr<git_revwalk, git_revwalk_free>;
using SigPtr = GitPtr<git_signature, git_signature_free>;
using RemotePtr = GitPtr<git_remote, git_remote_free>;

std::string git_error_text() {
  const git_error* e = git_error_last();
  return e && e->message ? trim(e->message) : std::string("unknown libgit2 error");
}

void check(int rc, const std::string& what) {
  if (rc < 0) throw Error(what + ": " + git_error_text());
}

std::string hex(const git_oid& oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, &oid);
  return buf;
}

git_oid oid_of(const std::string& sha, const std::string& what) {
  git_oid o;
  if (git_oid_fromstr(&o, sha.c_str()) != 0) throw Error(what + " '" + sha + "' is not a commit id");
  return o;
}

// ---- the filesystem, never following symlinks (more in repo_files) ---------

using namespace repo_files;

// The mode the guest sees. A 9p share in mapped-xattr mode keeps the
// guest's mode in user.virtfs.mode (little-endian) and its symlinks as
// regular files holding the target; files the host made have no such
// attribute, and their own mode counts.
std::optional<std::uint32_t> guest_mode(const fs::path& p) {
  unsigned char b[4];
  ssize_t n = ::lgetxattr(p.c_str(), "user.virtfs.mode", b, sizeof b);
  if (n != 4) return std::nullopt;
  return static_cast<std::uint32_t>(b[0]) | static_cast<std::uint32_t>(b[1]) << 8 |
         static_cast<std::uint32_t>(b[2]) << 16 | static_cast<std::uint32_t>(b[3]) << 24;
}

// Moves `from` (file, folder or symlink, never followed) to `to`.
void move_aside(const fs::path& from, const fs::path& to) {
  fs::create_directories(to.parent_path());
  std::error_code ec;
  fs::rename(from, to, ec);
  if (!ec) return;
  if (ec != std::errc::cross_device_link)
    throw Error("cannot move " + from.string() + " to " + to.string() + ": " + ec.message());
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  remove_tree(from);
}

bool vm_alive(const Meta& m) {
  if (m.qemu_pid && launcher::is_vm_process(*m.qemu_pid, vm_name(vm_id_of(m)), m.qemu_start_time)) return true;
  return !launcher::find_vm_processes(vm_name(vm_id_of(m))).empty();
}

// ---- the session repo, opened as data ---------------------------------------

struct SessionRepo {
  RepoPtr repo;
  git_odb* odb = nullptr;  // owned by repo; objects written go to memory
  fs::path workdir;
};

SessionRepo open_session_repo(const fs::path& workdir) {
  libgit2_init_once();
  fs::path gitdir = workdir / ".git";
  if (kind_of(workdir) != Kind::Dir || kind_of(gitdir) != Kind::Dir)
    throw Error("the session's repository " + workdir.string() + " has no .git folder",
                "it was removed or replaced by a link or file; nothing can be read from it safely");
  fs::path objects = gitdir / "objects";
  if (kind_of(objects) != Kind::Dir ||
      (kind_of(objects / "pack") != Kind::Dir && kind_of(objects / "pack") != Kind::Missing))
    throw Error("the session's " + objects.string() + " is not a folder",
                "it was replaced by a link; the session's objects cannot be read safely");
  if (kind_of(gitdir / "commondir") != Kind::Missing)
    throw Error("the session's repository points git at another repository (.git/commondir)",
                "stop the session (agent-stop removes it) and try again");
  SessionRepo s;
  s.workdir = workdir;
  git_repository* raw = nullptr;
  check(git_repository_open_bare(&raw, gitdir.c_str()), "cannot open the session's repository");
  s.repo.reset(raw);
  // No configuration from the session: an empty one in memory.
  git_config* cfg = nullptr;
  check(git_config_new(&cfg), "cannot make an empty git config");
  ConfigPtr own_cfg(cfg);
  check(git_repository_set_config(s.repo.get(), cfg), "cannot set the git config");
  // Its own objects only (no alternates), and new objects kept in memory.
  git_odb* odb = nullptr;
  check(git_odb_new(&odb), "cannot make an object database");
  OdbPtr own_odb(odb);
  git_odb_backend* b = nullptr;
  check(git_odb_backend_loose(&b, objects.c_str(), -1, 0, 0, 0), "cannot read " + objects.string());
  check(git_odb_add_backend(odb, b, 1), "cannot read " + objects.string());
  check(git_odb_backend_pack(&b, objects.c_str()), "cannot read the packs in " + objects.string());
  check(git_odb_add_backend(odb, b, 2), "cannot read " + objects.string());
  check(git_mempack_new(&b), "cannot make an in-memory object store");
  check(git_odb_add_backend(odb, b, 1000), "cannot make an in-memory object store");
  check(git_repository_set_odb(s.repo.get(), odb), "cannot set the object database");
  s.odb = odb;  // the repository holds its own reference
  check(git_repository_set_workdir(s.repo.get(), workdir.c_str(), 0), "cannot set the work tree");
  return s;
}

CommitPtr lookup_commit(git_repository* repo, const git_oid& oid, const std::string& what) {
  git_commit* c = nullptr;
  check(git_commit_lookup(&c, repo, &oid), "cannot find " + what + " " + hex(oid));
  return CommitPtr(c);
}

// The work tree as one tree: every file on disk that is tracked or not
// ignored, read byte for byte (no eol, ident or filter conversion), symlinks
// as links; submodules as the index has them. Written to memory only.
git_oid snapshot_tree(SessionRepo& s) {
  git_repository* repo = s.repo.get();
  git_index* raw_idx = nullptr;
  check(git_repository_index(&raw_idx, repo), "cannot read the session's index");
  IndexPtr idx(raw_idx);
  std::set<std::string> tracked;
  std::map<std::string, git_index_entry> gitlinks;
  for (size_t i = 0, n = git_index_entrycount(idx.get()); i < n; ++i) {
    const git_index_entry* e = git_index_get_byindex(idx.get(), i);
    if (git_index_entry_stage(e) > 0) continue;
    tracked.insert(e->path);
    if (e->mode == GIT_FILEMODE_COMMIT) gitlinks[e->path] = *e;
  }
  auto tracked_under = [&](const std::string& dir) {
    auto it = tracked.lower_bound(dir + "/");
    return it != tracked.end() && it->starts_with(dir + "/");
  };
  git_index* raw_out = nullptr;
  check(git_index_new(&raw_out), "cannot make an index");
  IndexPtr out(raw_out);
  auto add = [&](const std::string& path, std::uint32_t mode, const std::string& data) {
    git_index_entry e{};
    check(git_blob_create_from_buffer(&e.id, repo, data.data(), data.size()), "cannot hash " + path);
    e.mode = mode;
    e.path = path.c_str();
    check(git_index_add(out.get(), &e), "cannot add " + path);
  };
  std::error_code ec;
  fs::recursive_directory_iterator it(s.workdir, fs::directory_options::none, ec), end;
  if (ec) throw Error("cannot read " + s.workdir.string() + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) throw Error("cannot read " + s.workdir.string() + ": " + ec.message());
    std::string rel = it->path().lexically_relative(s.workdir).generic_string();
    std::string name = it->path().filename().string();
    Kind k = kind_of(it->path());
    if (name == ".git") {
      if (k == Kind::Dir) it.disable_recursion_pending();
      continue;
    }
    int ignored = 0;
    if (k == Kind::Dir) {
      if (gitlinks.count(rel)) {
        it.disable_recursion_pending();
        git_index_entry e = gitlinks[rel];
        check(git_index_add(out.get(), &e), "cannot add " + rel);
        continue;
      }
      if (kind_of(it->path() / ".git") != Kind::Missing && !tracked_under(rel)) {
        it.disable_recursion_pending();  // another repository inside: git leaves it out too
        continue;
      }
      check(git_ignore_path_is_ignored(&ignored, repo, (rel + "/").c_str()), "cannot read .gitignore");
      if (ignored && !tracked_under(rel)) it.disable_recursion_pending();
      continue;
    }
    if (k != Kind::File && k != Kind::Link) continue;
    if (!tracked.count(rel)) {
      check(git_ignore_path_is_ignored(&ignored, repo, rel.c_str()), "cannot read .gitignore");
      if (ignored) continue;
    }
    if (k == Kind::Link) {
      add(rel, GIT_FILEMODE_LINK, link_target(it->path()));
      continue;
    }
    struct stat st {};
    ::lstat(it->path().c_str(), &st);
    std::uint32_t mode = guest_mode(it->path()).value_or(st.st_mode);
    if (S_ISLNK(mode))
      add(rel, GIT_FILEMODE_LINK, read_nofollow(it->path()));
    else if (S_ISREG(mode))
      add(rel, (mode & S_IXUSR) ? GIT_FILEMODE_BLOB_EXECUTABLE : GIT_FILEMODE_BLOB, read_nofollow(it->path()));
  }
  // Submodules not checked out stay as the index has them.
  for (auto& [path, e] : gitlinks)
    if (!git_index_get_bypath(out.get(), path.c_str(), 0)) check(git_index_add(out.get(), &e), "cannot add " + path);
  git_oid tree;
  check(git_index_write_tree_to(&tree, out.get(), repo), "cannot write the work tree's tree");
  return tree;
}

std::string status_name(git_delta_t s) {
  switch (s) {
    case GIT_DELTA_ADDED: return "added";
    case GIT_DELTA_DELETED: return "deleted";
    case GIT_DELTA_RENAMED: return "renamed";
    case GIT_DELTA_COPIED: return "added";
    case GIT_DELTA_TYPECHANGE: return "type-changed";
    default: return "modified";
  }
}

// What the agent did: read from a session repo opened as data.
struct Work {
  git_oid base{}, head{}, head_tree{}, tree{};
  std::string head_name;
  std::vector<AgentCommit> commits;
  bool uncommitted = false;
  std::vector<FileChange> files;
  std::vector<ChangedPath> changed;
  std::string patch;
};

Work read_work(SessionRepo& s, const Meta& meta, bool want_patch) {
  git_repository* repo = s.repo.get();
  Work w;
  w.base = oid_of(meta.commit, "the session's start commit");
  CommitPtr base = lookup_commit(repo, w.base, "the commit the session started from");
  git_reference* raw_head = nullptr;
  check(git_repository_head(&raw_head, repo), "the session's repository has no HEAD");
  RefPtr head_ref(raw_head);
  git_object* head_obj = nullptr;
  check(git_reference_peel(&head_obj, head_ref.get(), GIT_OBJECT_COMMIT), "HEAD is not a commit");
  w.head = *git_object_id(head_obj);
  git_object_free(head_obj);
  if (git_reference_is_branch(head_ref.get())) w.head_name = git_reference_shorthand(head_ref.get());
  CommitPtr head = lookup_commit(repo, w.head, "HEAD");
  w.head_tree = *git_commit_tree_id(head.get());

  git_revwalk* raw_walk = nullptr;
  check(git_revwalk_new(&raw_walk, repo), "cannot walk the history");
  WalkPtr walk(raw_walk);
  git_revwalk_sorting(walk.get(), GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE);
  check(git_revwalk_push(walk.get(), &w.head), "cannot walk from HEAD");
  check(git_revwalk_hide(walk.get(), &w.base), "cannot walk to the start commit");
  git_oid c;
  while (git_revwalk_next(&c, walk.get()) == 0) {
    CommitPtr commit = lookup_commit(repo, c, "commit");
    const char* subject = git_commit_summary(commit.get());
    w.commits.push_back({hex(c), subject ? subject : ""});
  }

  w.tree = snapshot_tree(s);
  w.uncommitted = !git_oid_equal(&w.tree, &w.head_tree);

  git_tree *raw_a = nullptr, *raw_b = nullptr;
  check(git_commit_tree(&raw_a, base.get()), "cannot read the start commit's tree");
  TreePtr a(raw_a);
  check(git_tree_lookup(&raw_b, repo, &w.tree), "cannot read the work tree's tree");
  TreePtr b(raw_b);
  git_diff_options dopts;
  git_diff_options_init(&dopts, GIT_DIFF_OPTIONS_VERSION);
  dopts.flags = GIT_DIFF_INCLUDE_TYPECHANGE;
  git_diff* raw_diff = nullptr;
  check(git_diff_tree_to_tree(&raw_diff, repo, a.get(), b.get(), &dopts), "cannot compare the trees");
  DiffPtr diff(raw_diff);
  git_diff_find_options fopts;
  git_diff_find_options_init(&fopts, GIT_DIFF_FIND_OPTIONS_VERSION);
  fopts.flags = GIT_DIFF_FIND_RENAMES | GIT_DIFF_FIND_FOR_UNTRACKED;
  check(git_diff_find_similar(diff.get(), &fopts), "cannot find renames");

  for (size_t i = 0, n = git_diff_num_deltas(diff.get()); i < n; ++i) {
    git_patch* raw_patch = nullptr;
    check(git_patch_from_diff(&raw_patch, diff.get(), i), "cannot compare a file");
    PatchPtr patch(raw_patch);
    const git_diff_delta* d = git_patch_get_delta(patch.get());
    FileChange f;
    f.path = d->new_file.path ? d->new_file.path : d->old_file.path;
    if (d->status == GIT_DELTA_DELETED) f.path = d->old_file.path;
    if (d->status == GIT_DELTA_RENAMED) f.old_path = d->old_file.path;
    f.status = status_name(d->status);
    f.old_mode = d->status == GIT_DELTA_ADDED ? 0 : d->old_file.mode;
    f.new_mode = d->status == GIT_DELTA_DELETED ? 0 : d->new_file.mode;
    f.binary = (d->flags & GIT_DIFF_FLAG_BINARY) != 0;
    size_t ctx = 0, add = 0, del = 0;
    git_patch_line_stats(&ctx, &add, &del, patch.get());
    f.added = f.binary ? 0 : add;
    f.removed = f.binary ? 0 : del;
    ChangedPath cp{f.path, f.old_path, f.status, f.old_mode, f.new_mode, {}};
    if (fs::path(f.path).filename() == ".gitattributes" && f.status != "deleted") {
      git_blob* raw_blob = nullptr;
      if (git_blob_lookup(&raw_blob, repo, &d->new_file.id) == 0) {
        BlobPtr blob(raw_blob);
        cp.gitattributes_text.assign(static_cast<const char*>(git_blob_rawcontent(blob.get())),
                                     static_cast<size_t>(git_blob_rawsize(blob.get())));
      }
    }
    w.files.push_back(std::move(f));
    w.changed.push_back(std::move(cp));
  }
  if (want_patch) {
    auto print = [](const git_diff_delta*, const git_diff_hunk*, const git_diff_line* l, void* payload) -> int {
      auto* out = static_cast<std::string*>(payload);
      if (l->origin == GIT_DIFF_LINE_CONTEXT || l->origin == GIT_DIFF_LINE_ADDITION ||
          l->origin == GIT_DIFF_LINE_DELETION)
        *out += l->origin;
      out->append(l->content, l->content_len);
      return 0;
    };
    check(git_diff_print(diff.get(), GIT_DIFF_FORMAT_PATCH, print, &w.patch), "cannot print the diff");
  }
  return w;
}

// The commit of the uncommitted work, on top of HEAD (in memory).
git_oid commit_uncommitted(SessionRepo& s, const Work& w, const std::string& id, std::string& identity) {
  git_repository* repo = s.repo.get();
  std::string name = "agent-vm session " + id;
  std::string email = "agent@" + id + ".agent-vm";
  identity = name + " <" + email + ">";
  git_signature* raw_sig = nullptr;
  check(git_signature_now(&raw_sig, name.c_str(), email.c_str()), "cannot make a signature");
  SigPtr sig(raw_sig);
  git_tree* raw_tree = nullptr;
  check(git_tree_lookup(&raw_tree, repo, &w.tree), "cannot read the work tree's tree");
  TreePtr tree(raw_tree);
  CommitPtr parent = lookup_commit(repo, w.head, "HEAD");
  const git_commit* parents[] = {parent.get()};
  std::string msg = "Uncommitted work of agent-vm session " + id +
                    "\n\nThe changed and untracked files the agent left in its work tree, "
                    "as they were on disk.\n";
  git_oid out;
  check(git_commit_create(&out, repo, nullptr, sig.get(), sig.get(), "UTF-8", msg.c_str(), tree.get(), 1, parents),
        "cannot commit the uncommitted work");
  return out;
}

// Copies every object reachable from `tip` that `to` lacks from the
// session's object database into `to`. Returns how many were written.
std::size_t copy_objects(SessionRepo& s, git_odb* to, const git_oid& tip) {
  git_repository* repo = s.repo.get();
  std::vector<git_oid> order;
  std::set<std::string> seen;
  std::vector<std::pair<git_oid, git_object_t>> stack{{tip, GIT_OBJECT_COMMIT}};
  while (!stack.empty()) {
    auto [oid, type] = stack.back();
    stack.pop_back();
    if (!seen.insert(hex(oid)).second || git_odb_exists(to, &oid)) continue;
    order.push_back(oid);
    if (type == GIT_OBJECT_COMMIT) {
      CommitPtr c = lookup_commit(repo, oid, "commit");
      stack.push_back({*git_commit_tree_id(c.get()), GIT_OBJECT_TREE});
      for (unsigned i = 0; i < git_commit_parentcount(c.get()); ++i)
        stack.push_back({*git_commit_parent_id(c.get(), i), GIT_OBJECT_COMMIT});
    } else if (type == GIT_OBJECT_TREE) {
      git_tree* raw = nullptr;
      check(git_tree_lookup(&raw, repo, &oid), "cannot read tree " + hex(oid));
      TreePtr t(raw);
      for (size_t i = 0, n = git_tree_entrycount(t.get()); i < n; ++i) {
        const git_tree_entry* e = git_tree_entry_byindex(t.get(), i);
        git_object_t et = git_tree_entry_type(e);
        if (et == GIT_OBJECT_TREE || et == GIT_OBJECT_BLOB) stack.push_back({*git_tree_entry_id(e), et});
      }
    }
  }
  // Leaves first, so that what `to` holds stays complete as far as it goes.
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    git_odb_object* raw = nullptr;
    check(git_odb_read(&raw, s.odb, &*it), "cannot read object " + hex(*it));
    OdbObjPtr obj(raw);
    git_oid written;
    check(git_odb_write(&written, to, git_odb_object_data(obj.get()), git_odb_object_size(obj.get()),
                        git_odb_object_type(obj.get())),
          "cannot write object " + hex(*it));
  }
  return order.size();
}

std::string check_branch(const std::string& branch) {
  int valid = 0;
  std::string ref = "refs/heads/" + branch;
  if (branch.empty() || git_reference_name_is_valid(&valid, ref.c_str()) != 0 || !valid)
    throw Error("'" + branch + "' is not a valid branch name", "give a name like agent/fix-login to --branch");
  return ref;
}

// A session opened for reading its work: defused first when its VM is
// stopped (the lock is then held until this goes, so no resume starts
// meanwhile).
struct Opened {
  std::string id;
  Meta meta;
  SessionPaths paths;
  std::optional<SessionLock> lock;
  bool running = false;
  DefuseReport defused;
};

Opened open_session(const SessionStore& store, const std::string& id_or_prefix) {
  std::string id = store.resolve(id_or_prefix);
  Opened o{id, store.load(id), store.paths(id), std::nullopt, false, {}};
  if (vm_alive(o.meta)) {
    o.running = true;
    return o;
  }
  o.lock.emplace(store.lock(id));
  o.meta = store.load(id);
  if (vm_alive(o.meta)) {
    o.running = true;
    o.lock.reset();
    return o;
  }
  o.defused = defuse(o.paths, o.meta);
  return o;
}

std::vector<Warning> warnings_of(const Opened& o, const std::vector<ChangedPath>& changed) {
  RepoState st = read_repo_state(o.paths.repo());
  std::vector<Warning> w = classify(changed, st.config, st.hooks);
  w.insert(w.end(), st.other.begin(), st.other.end());
  // What defuse just removed is no longer there; say it was.
  for (const auto& r : o.defused.removed)
    w.push_back({"defused", r, "was in the session repo; removed and kept in " + o.defused.kept.string()});
  return w;
}

fs::path default_target(const Meta& meta, const std::string& id) {
  ParsedUrl u = parse_repo_url(meta.repo_url);
  if (u.kind != UrlKind::LocalPath && u.kind != UrlKind::File)
    throw Error("session " + id + " was cloned from " + redact_url(meta.repo_url) + ", not from a local repository",
                "name your local clone of it: agent-vm export " + id + " --to PATH (or use agent-vm push " + id +
                    ")");
  return fs::path(u.path);
}

}  // namespace

std::string default_branch(const std::string& id) { return "agent/" + id; }

DefuseReport defuse(const SessionPaths& paths, const Meta& meta) {
  if (vm_alive(meta))
    throw Error("session " + meta.id + " is running: its repository cannot be defused while the guest can write it",
                "stop it first with agent-stop " + meta.id);
  DefuseReport r;
  fs::path workdir = paths.repo();
  fs::path gitdir = workdir / ".git";
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  fs::path kept = paths.host / "defused" / stamp;
  for (int n = 1; fs::exists(fs::symlink_status(kept)); ++n)
    kept = paths.host / "defused" / (std::string(stamp) + "-" + std::to_string(n));
  auto keep_dir = [&] {
    make_private_dir(paths.host);
    make_private_dir(paths.host / "defused");
    make_private_dir(kept);
  };
  Kind gk = kind_of(gitdir);
  if (gk == Kind::Missing) return r;
  if (gk != Kind::Dir) {
    keep_dir();
    move_aside(gitdir, kept / "dot-git");
    r.removed.push_back(".git");
    r.kept = kept;
    return r;
  }
  for (const auto& dir : git_dirs(gitdir)) {
    fs::path rel = dir == gitdir ? fs::path() : dir.lexically_relative(gitdir);
    fs::path cfg = dir / "config";
    Kind ck = kind_of(cfg);
    if (ck == Kind::File) {
      std::string text = read_nofollow(cfg);
      std::vector<ConfigEntry> bad;
      for (auto& e : parse_git_config(text))
        if (!risky_config_key(e).empty()) bad.push_back(e);
      if (!bad.empty()) {
        keep_dir();
        fs::create_directories(kept / rel);
        write_file_atomic(kept / rel / "config", text, 0600);
        write_file_atomic(cfg, strip_config_entries(text, bad), 0644);
        for (const auto& e : bad) r.removed.push_back(label(gitdir, dir, e.key == "?" ? "config: " + e.value : e.key));
      }
    } else if (ck != Kind::Missing) {
      keep_dir();
      move_aside(cfg, kept / rel / "config");
      r.removed.push_back(label(gitdir, dir, "config"));
    }
    fs::path hooks = dir / "hooks";
    Kind hk = kind_of(hooks);
    if (hk == Kind::Dir) {
      for (const auto& name : names_in(hooks)) {
        if (!is_live_hook(name)) continue;
        fs::path h = hooks / name;
        keep_dir();
        move_aside(h, kept / rel / "hooks" / h.filename());
        r.removed.push_back(label(gitdir, dir, "hooks/" + h.filename().string()));
      }
    } else if (hk != Kind::Missing) {
      keep_dir();
      move_aside(hooks, kept / rel / "hooks");
      r.removed.push_back(label(gitdir, dir, "hooks"));
    }
    for (const char* f : {"commondir", "objects/info/alternates"}) {
      if (kind_of(dir / f) == Kind::Missing) continue;
      keep_dir();
      move_aside(dir / f, kept / rel / f);
      r.removed.push_back(label(gitdir, dir, f));
    }
  }
  if (!r.removed.empty()) r.kept = kept;
  return r;
}

DefuseReport defuse_after_stop(const SessionPaths& paths, const Meta& meta) {
  try {
    return defuse(paths, meta);
  } catch (const std::exception& e) {
    DefuseReport r;
    r.error = e.what();
    return r;
  }
}

WorkDiff diff(const SessionStore& store, const std::string& id_or_prefix, const DiffOptions& opts) {
  Opened o = open_session(store, id_or_prefix);
  SessionRepo s = open_session_repo(o.paths.repo());
  Work w = read_work(s, o.meta, opts.patch);
  WorkDiff d;
  d.id = o.id;
  d.base = hex(w.base);
  d.head = hex(w.head);
  d.head_name = w.head_name;
  d.commits = std::move(w.commits);
  d.uncommitted = w.uncommitted;
  d.files = std::move(w.files);
  d.patch = std::move(w.patch);
  d.warnings = warnings_of(o, w.changed);
  d.running = o.running;
  d.defused = std::move(o.defused);
  return d;
}

ExportResult export_work(const SessionStore& store, const std::string& id_or_prefix, const ExportOptions& opts) {
  Opened o = open_session(store, id_or_prefix);
  ExportResult r;
  r.id = o.id;
  r.branch = opts.branch.empty() ? default_branch(o.id) : opts.branch;
  std::string refname = check_branch(r.branch);
  fs::path target = opts.to ? *opts.to : default_target(o.meta, o.id);
  std::error_code ec;
  fs::path canon = fs::weakly_canonical(fs::absolute(target), ec);
  fs::path root = fs::weakly_canonical(fs::absolute(store.root()), ec);
  std::string cs = canon.string(), rs = root.string();
  if (cs == rs || cs.starts_with(rs + "/"))
    throw Error("cannot export into " + target.string() + ": it is inside the sessions folder",
                "export into your own clone of the repository: --to PATH");
  libgit2_init_once();
  git_repository* raw_target = nullptr;
  if (git_repository_open_ext(&raw_target, canon.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0)
    throw Error("no git repository at " + target.string() + " (" + git_error_text() + ")",
                "name your local clone with --to PATH");
  RepoPtr dest(raw_target);
  r.repo = canon;

  // Refuse before any object is written.
  git_reference* raw_old = nullptr;
  if (git_reference_lookup(&raw_old, dest.get(), refname.c_str()) == 0) {
    RefPtr old(raw_old);
    if (!opts.force)
      throw Error("the branch " + r.branch + " already exists in " + target.string(),
                  "pass --force to replace it, or --branch NAME for another one");
    const git_oid* oid = git_reference_target(old.get());
    if (oid) r.replaced = hex(*oid);
    git_reference* raw_head = nullptr;
    if (git_reference_lookup(&raw_head, dest.get(), "HEAD") == 0) {
      RefPtr head(raw_head);
      const char* t = git_reference_symbolic_target(head.get());
      if (t && refname == t)
        throw Error("the branch " + r.branch + " is checked out in " + target.string(),
                    "switch to another branch there first, or export to another one with --branch NAME");
    }
  }

  SessionRepo s = open_session_repo(o.paths.repo());
  Work w = read_work(s, o.meta, false);
  git_oid tip = w.head;
  if (w.uncommitted) {
    tip = commit_uncommitted(s, w, o.id, r.identity);
    r.uncommitted_commit = true;
  }
  git_odb* raw_odb = nullptr;
  check(git_repository_odb(&raw_odb, dest.get()), "cannot open the objects of " + target.string());
  OdbPtr dest_odb(raw_odb);
  r.objects_written = copy_objects(s, dest_odb.get(), tip);

  git_reference* raw_new = nullptr;
  std::string msg = "agent-vm export " + o.id;
  check(git_reference_create(&raw_new, dest.get(), refname.c_str(), &tip, opts.force ? 1 : 0, msg.c_str()),
        "cannot write the branch " + r.branch);
  git_reference_free(raw_new);
  r.base = hex(w.base);
  r.tip = hex(tip);
  r.commits = w.commits.size();
  r.warnings = warnings_of(o, w.changed);
  r.running = o.running;
  r.defused = std::move(o.defused);
  return r;
}

namespace {

struct PushState : RemoteAuth {
  std::string rejected;
};

int on_push_update(const char* ref, const char* status, void* payload) {
  auto* st = static_cast<PushState*>(static_cast<RemoteAuth*>(payload));
  if (status) st->rejected = std::string(ref) + ": " + status;
  return 0;
}

}  // namespace

PushResult push_work(const SessionStore& store, const std::string& id_or_prefix, const PushOptions& opts) {
  Opened o = open_session(store, id_or_prefix);
  PushResult r;
  r.id = o.id;
  r.branch = opts.branch.empty() ? default_branch(o.id) : opts.branch;
  std::string refname = check_branch(r.branch);
  std::string url = o.meta.repo_url;
  r.url = redact_url(url);
  PushState st;
  st.url = parse_repo_url(url);
  if (st.url.kind == UrlKind::LocalPath || st.url.kind == UrlKind::File) {
    libgit2_init_once();
    git_repository* raw_origin = nullptr;
    if (git_repository_open_ext(&raw_origin, st.url.path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) == 0) {
      RepoPtr origin(raw_origin);
      if (!git_repository_is_bare(origin.get()))
        throw Error("the session's origin " + r.url + " is a local repository with a work tree: it takes pushes "
                    "only when bare",
                    "use agent-vm export " + o.id + " to write the branch into it");
    }
  }

  SessionRepo s = open_session_repo(o.paths.repo());
  Work w = read_work(s, o.meta, false);
  git_oid tip = w.head;
  std::string identity;
  if (w.uncommitted) tip = commit_uncommitted(s, w, o.id, identity);

  // A throwaway repository on the host pushes: it shares the session's
  // objects (read as data) and holds the one ref.
  TempDir tmp("agent-vm-push");
  git_repository* raw_tmp = nullptr;
  check(git_repository_init(&raw_tmp, (tmp.path() / "repo.git").c_str(), 1), "cannot make a repository to push from");
  RepoPtr pusher(raw_tmp);
  check(git_repository_set_odb(pusher.get(), s.odb), "cannot share the session's objects");
  git_reference* raw_ref = nullptr;
  check(git_reference_create(&raw_ref, pusher.get(), refname.c_str(), &tip, 1, "agent-vm push"),
        "cannot make the branch to push");
  git_reference_free(raw_ref);

  git_remote* raw_remote = nullptr;
  check(git_remote_create_anonymous(&raw_remote, pusher.get(), url.c_str()), "cannot push to " + r.url);
  RemotePtr remote(raw_remote);
  git_push_options po;
  git_push_options_init(&po, GIT_PUSH_OPTIONS_VERSION);
  po.callbacks.credentials = remote_credentials;
  po.callbacks.certificate_check = remote_certificate;
  po.callbacks.push_update_reference = on_push_update;
  po.callbacks.payload = static_cast<RemoteAuth*>(&st);
  std::string spec = (opts.force ? "+" : "") + refname + ":" + refname;
  char* specs[] = {spec.data()};
  git_strarray refspecs{specs, 1};
  int rc = git_remote_push(remote.get(), &refspecs, &po);
  if (rc != 0) {
    if (!st.hostkey_error.empty()) throw Error(st.hostkey_error, st.hostkey_hint);
    if (!st.auth_problem.empty())
      throw Error("authentication failed for " + r.url + ": " + st.auth_problem,
                  "load a key the server accepts into ssh-agent (ssh-add) and check SSH_AUTH_SOCK");
    std::string msg = git_error_text();
    throw Error("cannot push " + r.branch + " to " + r.url + ": " + msg,
                msg.find("fast-forward") != std::string::npos || msg.find("not present locally") != std::string::npos
                    ? "the branch there has other commits: pass --force to replace it"
                : msg.find("non-bare") != std::string::npos
                    ? "the origin is a local repository with a work tree: use agent-vm export " + o.id
                    : "check that the server is up and accepts pushes from you");
  }
  if (!st.rejected.empty())
    throw Error("the server refused " + st.rejected, "pass --force to replace the branch there, or --branch NAME");
  r.tip = hex(tip);
  r.warnings = warnings_of(o, w.changed);
  r.running = o.running;
  r.defused = std::move(o.defused);
  return r;
}

}  // namespace avm::sessions
