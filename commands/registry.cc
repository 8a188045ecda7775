#include "commands/command.h"

namespace avm::cmd {

CommandList all_commands() {
  CommandList list;
  list.push_back(make_spawn());
  list.push_back(make_list());
  list.push_back(make_attach());
  list.push_back(make_stop());
  list.push_back(make_pause());
  list.push_back(make_unpause());
  list.push_back(make_resume());
  list.push_back(make_rm());
  list.push_back(make_logs());
  list.push_back(make_exec());
  for (auto make : {make_diff, make_export, make_push}) list.push_back(make());
  list.push_back(make_pool());
  list.push_back(make_image());
  list.push_back(make_doctor());
  list.push_back(make_qmp());
  list.push_back(make_qga());
  list.push_back(make_egress());
  list.push_back(make_gateway());
  list.push_back(make_agent_test());
  return list;
}

}  // namespace avm::cmd
