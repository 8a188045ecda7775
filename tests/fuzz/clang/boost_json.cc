// Boost.JSON compiled into the fuzz build (instrumented), in place of the
// distribution's libboost_json, which has no coverage instrumentation.
#include <boost/json/src.hpp>
