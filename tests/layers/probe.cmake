#  One layering probe (run by ctest, see CMakeLists.txt): compiles a file that includes
#  HEADER with the include directories of a library's own sources (INCS, "|"-separated).
#  EXPECT=pass: it must compile (the header belongs to that layer or one below it).
#  EXPECT=fail: it must fail, and because HEADER is not found (a layer above): any other
#  failure is reported, so the probe cannot pass by accident.
string (REPLACE "|" ";" incs "${INCS}")
set (args)
foreach (dir ${incs})
    list (APPEND args "-I${dir}")
endforeach ()
file (WRITE "${OUT}" "#include \"${HEADER}\"\nint qv_layer_probe;\n")
execute_process (COMMAND "${CC}" -std=gnu11 -D_GNU_SOURCE -fsyntax-only ${args} "${OUT}"
                 RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
string (REPLACE "." "\\." hre "${HEADER}")
if (EXPECT STREQUAL "pass")
    if (NOT rc EQUAL 0)
        message (FATAL_ERROR "${LIB} cannot include ${HEADER}, which it may use:\n${out}")
    endif ()
    message (STATUS "${LIB} includes ${HEADER}: allowed, compiles")
else ()
    if (rc EQUAL 0)
        message (FATAL_ERROR "${LIB} can include ${HEADER} from a layer above it: the layering is not enforced")
    endif ()
    if (NOT out MATCHES "${hre}[^\n]*(No such file|not found)")
        message (FATAL_ERROR "probe of ${HEADER} from ${LIB} failed, but not because the header is out of reach:\n${out}")
    endif ()
    message (STATUS "${LIB} includes ${HEADER}: refused (header not found), as it must be")
endif ()
