#include "tools/spate/command.h"

#include <algorithm>
#include <ostream>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace spate::cli {
namespace {

const Command* Find(const std::vector<Command>& commands,
                    absl::string_view name) {
  for (const Command& command : commands) {
    if (command.name == name) return &command;
  }
  return nullptr;
}

void PrintOverview(const std::vector<Command>& commands, std::ostream& out) {
  out << "spate: command-line client of the Spate streaming service\n\n"
      << "usage: spate COMMAND [ARGS] [--flags]\n\ncommands:\n";
  for (const Command& command : commands) {
    out << "  " << command.name
        << std::string(command.name.size() < 10 ? 10 - command.name.size() : 1,
                       ' ')
        << command.summary << "\n";
  }
  out << "\ncommon flags:\n";
  for (const std::string& name : CommonFlags()) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) continue;
    out << "  --" << name << ": " << flag->Help() << "\n";
  }
  out << "\nRun `spate help COMMAND` for a command's arguments and flags.\n";
}

void PrintUsage(const Command& command, std::ostream& out) {
  out << command.usage << "\n";
  if (!command.flags.empty()) out << "\nflags:\n";
  for (const std::string& name : command.flags) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) continue;
    out << "  --" << name << ": " << flag->Help();
    if (!flag->DefaultValue().empty()) {
      out << " (default: " << flag->DefaultValue() << ")";
    }
    out << "\n";
  }
  out << "\ncommon flags: ";
  for (const std::string& name : CommonFlags()) out << "--" << name << " ";
  out << "(see `spate --help`)\n";
}

bool IsHelp(absl::string_view arg) {
  return arg == "--help" || arg == "-help" || arg == "-h";
}

// Splits args into flags (applied to abseil's flag objects) and positional
// arguments. Accepts --name=value, --name value, --bool, --nobool; "--"
// ends the flags.
bool ParseArgs(const Command& command, const std::vector<std::string>& args,
               std::vector<std::string>* positional, std::string* error) {
  std::vector<std::string> allowed = CommonFlags();
  allowed.insert(allowed.end(), command.flags.begin(), command.flags.end());
  auto is_allowed = [&](absl::string_view name) {
    return std::find(allowed.begin(), allowed.end(), name) != allowed.end();
  };
  // Each run starts from the defaults, whatever an earlier run set.
  for (const std::string& name : allowed) {
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    std::string ignored;
    if (flag != nullptr) flag->ParseFrom(flag->DefaultValue(), &ignored);
  }
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--") {
      positional->insert(positional->end(), args.begin() + i + 1, args.end());
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      positional->push_back(args[i]);
      continue;
    }
    arg.remove_prefix(absl::StartsWith(arg, "--") ? 2 : 1);
    std::string name(arg.substr(0, arg.find('=')));
    const bool has_value = arg.find('=') != absl::string_view::npos;
    std::string value =
        has_value ? std::string(arg.substr(arg.find('=') + 1)) : std::string();
    absl::CommandLineFlag* flag =
        is_allowed(name) ? absl::FindCommandLineFlag(name) : nullptr;
    if (flag == nullptr && !has_value && absl::StartsWith(name, "no") &&
        is_allowed(name.substr(2))) {
      flag = absl::FindCommandLineFlag(name.substr(2));
      if (flag != nullptr && flag->IsOfType<bool>()) {
        name = name.substr(2);
        value = "false";
      } else {
        flag = nullptr;
      }
    } else if (flag != nullptr && !has_value) {
      if (flag->IsOfType<bool>()) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        *error = absl::StrCat("flag --", name, " needs a value");
        return false;
      }
    }
    if (flag == nullptr) {
      *error = absl::StrCat("unknown flag --", name, " for `spate ",
                            command.name, "`");
      return false;
    }
    std::string parse_error;
    if (!flag->ParseFrom(value, &parse_error)) {
      *error = absl::StrCat("bad value for --", name, ": ", parse_error);
      return false;
    }
  }
  return true;
}

}  // namespace

int RunCli(const std::vector<Command>& commands,
           const std::vector<std::string>& argv, const Io& io) {
  if (argv.size() < 2) {
    PrintOverview(commands, *io.err);
    return kExitUsage;
  }
  const std::string& name = argv[1];
  if (IsHelp(name) || name == "help") {
    if (name == "help" && argv.size() > 2) {
      const Command* command = Find(commands, argv[2]);
      if (command == nullptr) {
        *io.err << "spate: unknown command `" << argv[2] << "`\n";
        return kExitUsage;
      }
      PrintUsage(*command, *io.out);
      return kExitOk;
    }
    PrintOverview(commands, *io.out);
    return kExitOk;
  }
  const Command* command = Find(commands, name);
  if (command == nullptr) {
    *io.err << "spate: unknown command `" << name
            << "`; run `spate --help` for the list\n";
    return kExitUsage;
  }
  const std::vector<std::string> args(argv.begin() + 2, argv.end());
  if (std::any_of(args.begin(), args.end(),
                  [](const std::string& arg) { return IsHelp(arg); })) {
    PrintUsage(*command, *io.out);
    return kExitOk;
  }
  std::vector<std::string> positional;
  std::string error;
  if (!ParseArgs(*command, args, &positional, &error)) {
    *io.err << "spate " << command->name << ": " << error
            << " (see `spate help " << command->name << "`)\n";
    return kExitUsage;
  }
  return command->run(positional, io);
}

}  // namespace spate::cli
